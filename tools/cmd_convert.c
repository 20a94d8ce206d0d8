/* cmd_convert.c - placeholder */
#include "tools.h"
int cmd_convert(int argc, char **argv) { (void)argc; (void)argv; return 2; }
