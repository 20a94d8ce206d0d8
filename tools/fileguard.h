/* fileguard.h - a SIGBUS handler for the files the `lolcats` command maps.
   Weights are read in place from mmap'd files; when such a file is truncated
   (or rewritten) during a run, the next read of a vanished page raises
   SIGBUS, which would kill the process without a word. The handler names the
   file (the one whose weights hold the faulting address when known, else every
   input registered or given as --model / --lolcats / --inputs), says what
   happened, and exits 1. Only async-signal-safe calls inside the handler. */
#ifndef LOLCATS_TOOLS_FILEGUARD_H
#define LOLCATS_TOOLS_FILEGUARD_H
#include "lolcats.h"

/* Installs the handler; remembers the file arguments of argv (messages are
   built here, not in the handler). Call once at the start of main. */
void tool_fileguard_install(int argc, char **argv);
/* Registers a loaded model's weights (the address range they span) under path. */
void tool_fileguard_add_model(const char *path, const lc_model *m);
#endif
