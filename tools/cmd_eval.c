/* cmd_eval.c - placeholder */
#include "tools.h"
int cmd_eval(int argc, char **argv) { (void)argc; (void)argv; return 2; }
