/* outsafe.h - the output-safety layer every writing command goes through.

   A command registers what it reads and what it writes, then calls
   outsafe_begin() BEFORE any work (loading models, training). begin refuses:
     - an input that is missing or of the wrong kind ("is a directory", "is a FIFO");
     - an output that resolves (device + inode, or parent directory + name when it
       does not exist yet) to an input, to a file inside an input directory
       (--model DIR), or to another output (derived files such as OUT.state too);
     - an output whose directory is not writable (a probe file is created and
       removed there);
     - an existing training state without --resume (unless --force);
     - a Hugging Face directory output that is not empty (unless --force: then
       the directory is replaced whole, atomically);
     - an output another run is writing: an exclusive flock on OUT.lock beside
       each output, taken without waiting; the lock files are removed at exit.
   Temporary files (lc_st_write's OUT.tmp.<pid>, the tools' own) are
   registered and removed on every exit path: return from main, exit(), and
   SIGINT/SIGTERM/SIGHUP. During training (outsafe_training) the first signal
   only sets a flag that the training loop polls (outsafe_stop) to save its
   state and stop; a second one exits at once. */
#ifndef LOLCATS_OUTSAFE_H
#define LOLCATS_OUTSAFE_H

enum {
    /* inputs */
    OUTSAFE_IN_FILE = 1,          /* a regular file */
    OUTSAFE_IN_DIR,               /* a directory; the files in it count as inputs */
    OUTSAFE_IN_MODEL,             /* a regular file or a directory (--model, --lolcats) */
    /* outputs */
    OUTSAFE_OUT_FILE,             /* a file written atomically (lc_st_write: OUT.tmp.<pid>) */
    OUTSAFE_OUT_LOG,              /* a file written in place (--json-log) */
    OUTSAFE_OUT_DIR,              /* a directory that receives files (--report, cache-inputs --out) */
    OUTSAFE_OUT_HF                /* a Hugging Face directory: written whole into DIR.tmp.<pid>, then renamed */
};

/* Registration (nothing is checked yet). flag names the path in messages
   ("--out", "OUT"); a NULL path is ignored. */
void outsafe_input(const char *flag, const char *path, int kind);
void outsafe_output(const char *flag, const char *path, int kind);
/* A file the run writes beside an output (OUT.state, OUT.stage1...): checked
   against the inputs and outputs, its temporary file registered, no lock. */
void outsafe_derived(const char *flag, const char *path);
/* A training state: also refused when it exists and neither resume nor --force. */
void outsafe_state(const char *flag, const char *path, int resume);

/* Checks everything registered; takes the locks (lock: 0 on MPI ranks other
   than 0), installs the signal handlers. argv is kept for the resume hint.
   Returns 0, or the exit code after printing why. */
int outsafe_begin(int argc, char **argv, int force, int lock);

/* Temporary files: outsafe_tmp registers a path (returns a slot, -1 if full),
   outsafe_tmp_set reuses a slot for another path; all are removed at exit. */
int outsafe_tmp(const char *path);
void outsafe_tmp_set(int slot, const char *path);
/* lc_st_write's temporary file PATH.tmp.<pid>: into slot (a new one when < 0) */
int outsafe_st_tmp(int slot, const char *path);

/* Hugging Face directory outputs: the directory to write into (DIR.tmp.<pid>,
   created), then outsafe_hf_commit moves it into place (an old DIR moved
   away first and removed after). Both print the error and return NULL / 1. */
const char *outsafe_hf_dir(const char *path);
int outsafe_hf_commit(const char *path);

/* Signals during training: after outsafe_training() the first SIGINT/SIGTERM
   sets a flag; outsafe_stop() returns its number (0: none); outsafe_exit_code()
   is 128 + it. outsafe_resume_hint() prints how to continue. */
void outsafe_training(void);
int outsafe_stop(void);
int outsafe_exit_code(void);
void outsafe_resume_hint(const char *what);
#endif
