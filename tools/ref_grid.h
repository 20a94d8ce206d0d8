/* ref_grid.h - `lolcats ref --grid DIR`: writes the edge grid (lc_ref_grid_*). */
#ifndef LOLCATS_REF_GRID_H
#define LOLCATS_REF_GRID_H
/* Creates DIR (or uses it if it exists) and writes one <case>.safetensors per
   grid case; returns the exit code. */
int ref_grid_write_dir(int argc, char **argv, const char *dir);
#endif
