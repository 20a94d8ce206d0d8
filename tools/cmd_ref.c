/* cmd_ref.c - `lolcats ref IN.safetensors OUT.safetensors`: the reference
   check other backends validate against. Reads one case (op, inputs, optional
   upstream gradients), runs lolcats.h's kernels and writes the outputs. */
#include "tools.h"
#include "args.h"
#include "outsafe.h"
#include "ref_grid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ref_usage[] =
    "lolcats ref IN.safetensors OUT.safetensors [--scalar] [--weights] [--precision P]\n"
    "            [--intermediates]\n"
    "lolcats ref --grid DIR : writes the edge grid a backend should pass to DIR, one\n"
    "            <case>.safetensors per case (inputs, expected outputs, f64.<name>)\n"
    "Runs one LoLCATs op on the float tensors of IN and writes its outputs to OUT.\n"
    "  IN tensors : q (B,H,N,D); k, v (B,Hk,N,D); for linear/hybrid ops\n"
    "               feature_map_q.weight, feature_map_k.weight (H,D,f), optional\n"
    "               feature_map_{q,k}.bias (H); for hybrid window_factors (H) and\n"
    "               optional kv_state (B,H,F,D) + k_state (B,H,F); optional log_g\n"
    "               (B,H,N): the gated linear state's log decay per token (f32/bf16,\n"
    "               no intermediates); optional upstream\n"
    "               gradients dy (B,H,N,D) and da (B,H,N,N, softmax/hybrid).\n"
    "               Loss ops: pred, target (mse_loss) or a_pred, a_true (xent_loss).\n"
    "  metadata   : op = softmax_attention | linear_attention | hybrid_attention |\n"
    "               mse_loss | xent_loss; variant = tk (default) | sw; window (64);\n"
    "               feature_map = softmax_dim (default) | exp_dim | pos_elu | relu;\n"
    "               halfspace (0); eps (1e-12); affine (0); sinks (0, attention sinks);\n"
    "               factor (loss ops);\n"
    "               run options weights, scalar, linear_state (0 or 1, as the flags).\n"
    "  OUT        : y, a (attention weights: only with --weights or da) and, when dy or\n"
    "               da is given, dq, dk, dv,\n"
    "               d_feature_map_{q,k}.weight/.bias, d_window_factors, d_kv_state,\n"
    "               d_k_state, d_log_g (those that apply); loss, d_pred / d_a_pred.\n"
    "  --scalar   : the scalar reference path (default: best SIMD path of this CPU)\n"
    "  --weights  : also compute and write the attention weights a (B,H,N,N)\n"
    "  --intermediates : also phi_q, phi_k, window_max, window_num/den, linear_num/den\n"
    "               (the parts of y), prefix_kv_state/prefix_k_state at each chunk start,\n"
    "               final_kv_state/final_k_state, decode_kv_state/decode_k_state (hybrid:\n"
    "               the state decoding continues from); IN tensors d_final_kv_state (B,H,F,D)\n"
    "               and d_final_k_state (B,H,F) are a cotangent on the final state\n"
    "  --precision f32|f64|bf16 : f32 (default); f64: the op in double, forward and\n"
    "               backward (quadratic, one thread), outputs rounded once; bf16: every\n"
    "               input rounded to bfloat16 (nearest even), then f32 (metadata precision)\n"
    "  --linear-state : linear_attention through the causal state form\n"
    "  -t, --threads N : OpenMP threads (OMP_NUM_THREADS or all cores)\n"
    "Other tensors in IN are ignored, so a golden file can hold its expected outputs.\n";

int cmd_ref(int argc, char **argv) {
    const char *in_path = NULL, *out_path = NULL, *grid = NULL;
    lc_ctx ctx;
    lc_error err;
    lc_st_file *in = NULL;
    lc_ref_result *res = NULL;
    const char *opts[10], *const *meta, *precision = NULL;
    int i, n, n_meta, n_opts = 0, flags = 0, rc_exit = 0;
    memset(&err, 0, sizeof err);
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            return tool_arg_help(ref_usage, NULL);
        } else if (!strcmp(argv[i], "--scalar") || !strcmp(argv[i], "--linear-state") ||
                   !strcmp(argv[i], "--weights") || !strcmp(argv[i], "--intermediates")) {
            flags |= argv[i][2] == 's' ? 1 : argv[i][2] == 'l' ? 2 : argv[i][2] == 'w' ? 4 : 8;
        } else if (!strcmp(argv[i], "--grid")) {
            grid = tool_arg_value(argc, argv, &i);
        } else if (!strcmp(argv[i], "--precision")) {
            static const char *const prec[] = {"f32", "f64", "bf16"};
            precision = prec[tool_arg_choice("--precision", tool_arg_value(argc, argv, &i), "f32|f64|bf16")];
        } else if (!strcmp(tool_arg_alias(argv[i]), "--threads")) {
            tool_arg_threads("--threads", tool_arg_value(argc, argv, &i));
        } else if (argv[i][0] == '-' && argv[i][1]) {
            tool_arg_unknown(argv[0], argv[i], ref_usage, NULL);
        } else if (!in_path) {
            in_path = argv[i];
        } else if (!out_path) {
            out_path = argv[i];
        } else {
            tool_arg_fail(argv[0], "ref takes IN and OUT, got a third argument '%s'", argv[i]);
        }
    }
    if (grid) {
        if (in_path) tool_arg_fail(argv[0], "--grid DIR takes no IN/OUT (got '%s')", in_path);
        return ref_grid_write_dir(argc, argv, grid);
    }
    if (!in_path || !out_path)
        tool_die_usage("lolcats ref IN.safetensors OUT.safetensors [--scalar] (see --help)");
    outsafe_input("IN", in_path, OUTSAFE_IN_FILE);   /* OUT must not be IN (outsafe.h) */
    outsafe_output("OUT", out_path, OUTSAFE_OUT_FILE);
    if (outsafe_begin(argc, argv, 0, 1)) return 1;
    lc_ctx_init(&ctx);
    /* run options: the same keys a case's metadata (or the Python module) sets */
    for (i = 0; i < 4; i++)
        if (flags & (1 << i)) {
            opts[2 * n_opts] = i == 0 ? "scalar" : i == 1 ? "linear_state" : i == 2 ? "weights" : "intermediates";
            opts[2 * n_opts++ + 1] = "1";
        }
    if (precision) {
        opts[2 * n_opts] = "precision";
        opts[2 * n_opts++ + 1] = precision;
    }
    if (lc_st_open(&in, in_path, &err) != LOLCATS_OK) return tool_report(&err);
    /* lc_ref_run_st: the same path build/liblolcats.so runs for python/lolcats */
    if (lc_ref_run_st(&ctx, in, opts, n_opts, &res, &err) != LOLCATS_OK) {
        if (strncmp(err.msg, in_path, strlen(in_path))) fprintf(stderr, "lolcats: %s: ", in_path);
        rc_exit = tool_report(&err);
        goto done;
    }
    n = lc_ref_result_count(res);
    meta = lc_ref_result_meta(res, &n_meta);
    if (lc_st_write(out_path, lc_ref_result_tensors(res), n, meta, n_meta, &err) != LOLCATS_OK) rc_exit = tool_report(&err);
    else fprintf(stderr, "lolcats ref: %s -> %s: %d tensors (%s, %s%s)\n", in_path, out_path, n, meta[1],
                 n_meta > 3 ? "precision " : "", n_meta > 3 ? meta[7] : meta[3]);
done:
    lc_ref_result_free(res);
    lc_st_close(in);
    return rc_exit;
}
