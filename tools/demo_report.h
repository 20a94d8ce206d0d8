/* demo_report.h - progress line and pictures of `lolcats demo` (drawn with the
   canvas of report.h). */
#ifndef LOLCATS_DEMO_REPORT_H
#define LOLCATS_DEMO_REPORT_H
#include "lolcats.h"

/* "what  done/total  rate unit  loss" on stderr: redrawn with \r on a terminal,
   else a plain line now and then (tool_progress_plain_due) */
void tool_progress(const char *what, long done, long total, double rate, const char *unit, double loss);
void tool_progress_done(void);
/* Without a terminal: 1 when a plain progress line is due, every
   LOLCATS_PROGRESS_SECONDS (default 10; 0: every call) since *last (0: start). */
int tool_progress_plain_due(double *last);
/* teacher | student attention of head 0 of `layer`: DIR/attention_<tag>.png */
void tool_report_attention(const char *dir, const char *tag, lc_train *t, const int *tokens, int T, int layer);
/* loss curves of the three demo stages: DIR/loss_curves.png */
void tool_report_curves(const char *dir, const float *a, int na, const float *b, int nb, const float *c, int nc);
/* magnitude of the LoRA weight change of `layer` (q, k, v, o): DIR/lora_update.png */
void tool_report_lora(const char *dir, lc_train *t, int layer);
void tool_report_summary(const char *dir, double l0, double a0, double l1, double a1, double l2, double a2,
                         double l3, double a3, double l4, double a4, double l5, double a5);
#endif
