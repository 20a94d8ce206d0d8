#!/usr/bin/env python3
"""hf_reference.py - reference numbers from Hugging Face transformers (float32)
for tests/test_model.c: tests/data/hf_ref.safetensors.

Ran once on the project's GPU machine (an H100 host with transformers 5.17.0 and
torch 2.11.0; the model computes on its CPU in float32, so no TF32 or reduced-
precision reductions; about 30 s), with the inputs prepared here in an ignored
folder that travelled with the working tree (the script was copied beside them):

    mkdir -p build/hfref/stories_hf
    cp -r ../shared/models/alpaca-llama-25m build/hfref/alpaca25m
    build/lolcats convert --from-llama2c ../shared/models/stories260K/stories260K.bin \\
        --out build/hfref/stories_hf
    # build/hfref/prompts.json: {"nll": [texts], "greedy": [prompts]}
    python3 tools/hf_reference.py build/hfref $OUT/hf_ref.safetensors    # on the device
    cp $OUT/hf_ref.safetensors tests/data/                                # back here

What it stores (safetensors; texts, ids and versions in the metadata):
  alpaca-llama-25m, per text k of prompts["nll"]:
    nll_ids_k (I32)      tokenizer ids ([BOS] + text), from transformers' tokenizer
    nll_k (F32)          next-token NLL at every position (float64 log-softmax of
                         the float32 logits)
    nll_logits_k (F32)   last-position logits (V)
  per prompt k of prompts["greedy"]:
    gen_prompt_k (I32)   prompt ids;  gen_k (I32) 40 greedy tokens (KV cache),
    gen_margin_k (F32)   top-1 minus top-2 logit at each greedy step
  the converted stories260K directory, ids st_ids (I32, 100 tokens):
    st_logits (F32, (100,512))       as converted (LlamaForCausalLM)
    st_llama3_logits, st_llama3_inv_freq   config with rope_scaling llama3
                         (factor 8, low 1, high 4, original_max_position_embeddings 128)
    st_mistral_logits    as MistralForCausalLM with sliding_window 8 (eager attention)
  llama31_inv_freq (F32, 64): Llama 3.1 8B's rope (head_dim 128, theta 500000,
                         factor 8, low 1, high 4, original 8192) as transformers computes it
"""
import copy, json, os, shutil, sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer
from safetensors.torch import save_file

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_num_threads(max(1, os.cpu_count() or 1))

LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 128,
          "rope_theta": 10000.0}


def load(d, **kw):
    m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, **kw)
    return m.eval()


def nll_of(logits, ids):  # logits (N,V) float32 -> (N-1) float32 NLL, computed in float64
    lp = torch.log_softmax(logits.double(), dim=-1)
    return (-lp[:-1].gather(1, ids[1:, None]).squeeze(1)).float()


def variant(src, dst, edit):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    cfg = json.load(open(os.path.join(dst, "config.json")))
    edit(cfg)
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"), indent=1)
    return dst


def main():
    root, out = sys.argv[1], sys.argv[2]
    prompts = json.load(open(os.path.join(root, "prompts.json"), encoding="utf-8"))
    T, meta = {}, {"transformers": transformers.__version__, "torch": torch.__version__}

    # alpaca-llama-25m
    d = os.path.join(root, "alpaca25m")
    tok = AutoTokenizer.from_pretrained(d)
    m = load(d, attn_implementation="eager")
    with torch.no_grad():
        for k, text in enumerate(prompts["nll"]):
            ids = torch.tensor(tok(text)["input_ids"])
            lg = m(ids[None]).logits[0].float()
            T["nll_ids_%d" % k] = ids.int()
            T["nll_%d" % k] = nll_of(lg, ids)
            T["nll_logits_%d" % k] = lg[-1].clone()
            meta["nll_text_%d" % k] = text
            print("nll %d: %d tokens, mean %.6f" % (k, len(ids), T["nll_%d" % k].double().mean()))
        for k, text in enumerate(prompts["greedy"]):
            ids = torch.tensor(tok(text)["input_ids"])
            o = m(ids[None], use_cache=True)
            gen, margin = [], []
            for _ in range(40):
                l = o.logits[0, -1].float()
                top = torch.topk(l, 2)
                nxt = int(top.indices[0])
                gen.append(nxt)
                margin.append(float(top.values[0] - top.values[1]))
                o = m(torch.tensor([[nxt]]), past_key_values=o.past_key_values, use_cache=True)
            T["gen_prompt_%d" % k] = ids.int()
            T["gen_%d" % k] = torch.tensor(gen, dtype=torch.int32)
            T["gen_margin_%d" % k] = torch.tensor(margin)
            meta["gen_text_%d" % k] = text
            meta["gen_out_%d" % k] = tok.decode(gen)
            print("greedy %d: %r (min margin %.4f)" % (k, tok.decode(gen), min(margin)))
    meta["nll_count"] = str(len(prompts["nll"]))
    meta["gen_count"] = str(len(prompts["greedy"]))

    # the converted stories260K directory and two config variants of it
    st = os.path.join(root, "stories_hf")
    ids = torch.tensor([1] + [(i * 131 + 7) % 512 for i in range(1, 100)])
    T["st_ids"] = ids.int()
    with torch.no_grad():
        T["st_logits"] = load(st)(ids[None]).logits[0].float().contiguous()

        def to_llama3(c):
            c["rope_scaling"] = dict(LLAMA3)
            c["rope_parameters"] = dict(LLAMA3)
        m3 = load(variant(st, "/tmp/st_llama3", to_llama3))
        T["st_llama3_logits"] = m3(ids[None]).logits[0].float().contiguous()
        T["st_llama3_inv_freq"] = m3.model.rotary_emb.inv_freq.float().clone()
        meta["st_llama3_rope"] = json.dumps(LLAMA3)

        def to_mistral(c):
            c["architectures"] = ["MistralForCausalLM"]
            c["model_type"] = "mistral"
            c["sliding_window"] = 8
        mm = load(variant(st, "/tmp/st_mistral", to_mistral), attn_implementation="eager")
        meta["st_mistral_class"] = type(mm).__name__
        T["st_mistral_logits"] = mm(ids[None]).logits[0].float().contiguous()

    # Llama 3.1 8B's rope frequencies, through transformers' own init function
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    r31 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
           "high_freq_factor": 4.0, "original_max_position_embeddings": 8192,
           "rope_theta": 500000.0}
    try:   # transformers 5: rope_parameters
        cfg = transformers.LlamaConfig(hidden_size=4096, num_attention_heads=32, head_dim=128,
                                       max_position_embeddings=131072, rope_parameters=r31)
        inv, scale = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
    except Exception as e:  # transformers 4: rope_scaling + rope_theta
        print("rope_parameters route failed (%s); using rope_scaling" % e)
        cfg = transformers.LlamaConfig(hidden_size=4096, num_attention_heads=32, head_dim=128,
                                       max_position_embeddings=131072, rope_scaling=r31,
                                       rope_theta=500000.0)
        inv, scale = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
    T["llama31_inv_freq"] = inv.float().clone()
    meta["llama31_attention_scaling"] = str(scale)

    T = {k: v.contiguous() for k, v in T.items()}
    save_file(T, out, metadata=meta)
    print("wrote", out, sorted(T))


if __name__ == "__main__":
    main()
