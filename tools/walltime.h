/* walltime.h - wall-clock seconds for the tools' tokens/s lines. */
#ifndef LOLCATS_WALLTIME_H
#define LOLCATS_WALLTIME_H
double tool_wall_seconds(void);   /* monotonic, arbitrary origin */
/* "lolcats: WHAT: N tokens in S s, R tokens/s" on stderr (R "-" when S is 0) */
void tool_report_rate(const char *what, long long tokens, double secs);
#endif
