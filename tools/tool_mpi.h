/* tool_mpi.h - the MPI glue of the `lolcats` command (optional at build time: the
   Makefile defines LOLCATS_TOOL_MPI and builds with mpicc when it finds one).
   Without it every call is the single-process identity and tool_mpi_init
   refuses --mpi with a clear message. */
#ifndef LOLCATS_TOOL_MPI_H
#define LOLCATS_TOOL_MPI_H
#include <stddef.h>

/* Starts MPI when `wanted`; returns 0 on success, 1 (after printing why) when
   MPI was asked for but this build has none. */
int tool_mpi_init(int wanted, int *argc, char ***argv);
int tool_mpi_rank(void);
int tool_mpi_size(void);
/* in-place sum over ranks (float / double) */
void tool_mpi_sum_f32(float *buf, size_t n);
void tool_mpi_sum_f64(double *buf, size_t n);
/* every rank gets root's bytes */
void tool_mpi_bcast(void *buf, size_t bytes, int root);
void tool_mpi_barrier(void);
void tool_mpi_finalize(void);
/* the half-open share [begin, end) of n items that this rank owns */
void tool_mpi_share(int n, int *begin, int *end);
#endif
