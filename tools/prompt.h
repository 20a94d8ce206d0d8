/* prompt.h - prompting as in llama.cpp for `lolcats generate`: the prompt
   from a file or stdin (-f FILE, -f -, -p -), chat templates (--chat: Llama 3,
   ChatML / Qwen, Alpaca) whose markers become their single special-token ids,
   and the interactive mode (-i) that keeps the model's state across turns. */
#ifndef LOLCATS_TOOL_PROMPT_H
#define LOLCATS_TOOL_PROMPT_H
#include "tools.h"

enum { TOOL_CHAT_NONE = 0, TOOL_CHAT_ALPACA = 1, TOOL_CHAT_LLAMA3 = 2, TOOL_CHAT_CHATML = 3 };

typedef struct {
    const char *file;         /* --prompt-file (-f): path or "-" (stdin); NULL: none */
    int chat;                 /* --chat */
    const char *tpl_name;     /* --chat-template alpaca|llama3|chatml; NULL: from the tokenizer */
    const char *system;       /* --system TEXT; NULL: none */
    int interactive;          /* --interactive (-i) */
    int verbose;              /* --verbose-prompt: the prompt's ids on stderr */
    int tpl;                  /* TOOL_CHAT_*, set by tool_prompt_setup */
} tool_prompt_opts;

/* Whole file (or stdin for "-") as a NUL-terminated string, one trailing
   newline dropped (as llama.cpp's -f). Prints "lolcats: error: FLAG PATH: ..."
   and returns NULL when it cannot be read, is empty or holds a NUL byte. */
char *tool_prompt_read(const char *flag, const char *path);

/* After the tokenizer is loaded: picks the template (po->tpl) and checks the
   flags against it (--system needs a system role). 0 or 1 after printing. */
int tool_prompt_setup(tool_prompt_opts *po, const lc_tokenizer *tok);
const char *tool_chat_name(int tpl);

/* The token that ends the assistant's turn: <|eot_id|>, <|im_end|>, the EOS
   for Alpaca; -1 without a template. */
int tool_chat_end_id(const lc_tokenizer *tok, int tpl);

/* Appends the ids of one user turn to *ids (grown as needed): first = the
   conversation's opening (BOS, the system turn). Without a template: the text,
   with BOS when first, no SentencePiece dummy prefix when not first. */
int tool_chat_turn(const lc_tokenizer *tok, int tpl, int first, const char *system, const char *user,
                   int **ids, size_t *n, size_t *cap);

/* "prompt: N tokens: id id ..." on stderr */
void tool_prompt_print_ids(const int *ids, size_t n);

/* Interactive generation (-i): the prompt (if any) is the first turn, then one
   line of stdin per turn until EOF or "/exit"; the state is kept across turns. */
typedef struct {
    float temperature, top_p;
    unsigned long long seed;
    int n_new;                /* tokens per reply (0: until the end of the turn or the context) */
    int ctx;                  /* KV cache positions (0: the model's seq_len) */
} tool_gen_params;
int tool_prompt_interactive(const lc_model *m, const lc_tokenizer *tok, const tool_lm_opts *lo,
                            const tool_prompt_opts *po, const tool_gen_params *gp, const char *prompt);
#endif
