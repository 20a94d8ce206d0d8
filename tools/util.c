/* util.c - small helpers shared by the subcommands. */
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>

void tool_die_usage(const char *usage) {
    fprintf(stderr, "usage: %s\n", usage);
    exit(2);
}

int tool_report(const lc_error *err) {
    fprintf(stderr, "lolcats: error: %s\n", err->msg[0] ? err->msg : lc_status_name(err->code));
    return 1;
}
