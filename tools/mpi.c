/* mpi.c - see tool_mpi.h. Sums reduce in rank order on every rank (MPI_Allreduce
   with MPI_SUM on contiguous buffers); callers that need bit-identical results
   with a single process give each rank disjoint non-zero entries, so the sum
   adds only zeros to each value. */
#include "tool_mpi.h"

#include <stdio.h>
#include <string.h>

#ifdef LOLCATS_TOOL_MPI
#include <mpi.h>
static int mpi_on;

int tool_mpi_init(int wanted, int *argc, char ***argv) {
    if (!wanted) return 0;
    MPI_Init(argc, argv);
    mpi_on = 1;
    return 0;
}

int tool_mpi_rank(void) {
    int r = 0;
    if (mpi_on) MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int tool_mpi_size(void) {
    int s = 1;
    if (mpi_on) MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
}

static void chunks(void *buf, size_t n, size_t esz, MPI_Datatype t) {
    size_t off = 0;
    while (off < n) {  /* MPI counts are int */
        size_t m = n - off > (size_t)1 << 28 ? (size_t)1 << 28 : n - off;
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * esz, (int)m, t, MPI_SUM, MPI_COMM_WORLD);
        off += m;
    }
}

void tool_mpi_sum_f32(float *buf, size_t n) { if (mpi_on) chunks(buf, n, sizeof(float), MPI_FLOAT); }
void tool_mpi_sum_f64(double *buf, size_t n) { if (mpi_on) chunks(buf, n, sizeof(double), MPI_DOUBLE); }

void tool_mpi_bcast(void *buf, size_t bytes, int root) {
    size_t off = 0;
    if (!mpi_on) return;
    while (off < bytes) {
        size_t m = bytes - off > (size_t)1 << 30 ? (size_t)1 << 30 : bytes - off;
        MPI_Bcast((char *)buf + off, (int)m, MPI_BYTE, root, MPI_COMM_WORLD);
        off += m;
    }
}

void tool_mpi_barrier(void) { if (mpi_on) MPI_Barrier(MPI_COMM_WORLD); }

void tool_mpi_finalize(void) {
    if (mpi_on) MPI_Finalize();
    mpi_on = 0;
}
#else
int tool_mpi_init(int wanted, int *argc, char ***argv) {
    (void)argc; (void)argv;
    if (!wanted) return 0;
    fprintf(stderr, "lolcats: --mpi: this build has no MPI (install libopenmpi-dev, rebuild with make; "
                    "the Makefile uses mpicc when it finds it)\n");
    return 1;
}
int tool_mpi_rank(void) { return 0; }
int tool_mpi_size(void) { return 1; }
void tool_mpi_sum_f32(float *buf, size_t n) { (void)buf; (void)n; }
void tool_mpi_sum_f64(double *buf, size_t n) { (void)buf; (void)n; }
void tool_mpi_bcast(void *buf, size_t bytes, int root) { (void)buf; (void)bytes; (void)root; }
void tool_mpi_barrier(void) {}
void tool_mpi_finalize(void) {}
#endif

void tool_mpi_share(int n, int *begin, int *end) {
    int r = tool_mpi_rank(), s = tool_mpi_size();
    *begin = (int)((long)n * r / s);
    *end = (int)((long)n * (r + 1) / s);
}
