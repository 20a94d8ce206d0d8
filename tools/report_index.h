/* report_index.h - DIR/index.html beside the pictures of `demo --report` and
   `distill/finetune/linearize --report`: every PNG in DIR with a caption saying
   what it shows, written atomically (DIR/index.html.tmp.<pid>, then renamed). */
#ifndef LOLCATS_TOOLS_REPORT_INDEX_H
#define LOLCATS_TOOLS_REPORT_INDEX_H
/* 0 written (or nothing to index), 1 error (message on stderr) */
int tool_report_index(const char *dir, const char *heading);
/* the caption of a picture file name of ours (a generic one for others) into buf */
void tool_report_caption(const char *name, char *buf, int n);
#endif
