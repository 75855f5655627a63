#!/usr/bin/env python3
"""vdiff tokenize against the SentencePiece goldens (tests/data/tokenizer/golden.jsonl,
made by tests/reference/tokenizer_golden.py with the sentencepiece library): exact ids
for every entry of vdiff-small.model and the first 12 of each other model (the library
test tests/tokenizer checks them all; one process per text costs ~0.1 s), the text
given as raw bytes through --file (NUL bytes and invalid UTF-8 included) and max_len
as --max-tokens.  Then the same tokenizer read from a checkpoint's spiece_model tensor
(vdiff mkmodel --tokenizer) gives the same ids for 16 texts given as the TEXT argument,
--file - reads stdin, and bad usage fails.  Standard library only."""
import json
import os
import subprocess
import sys
import tempfile

VDIFF = os.environ["VDIFF"]
DATA = os.path.join(os.environ["VD_SOURCE_ROOT"], "tests", "data", "tokenizer")


def tokenize(tokenizer, args, stdin=None):
    p = subprocess.run([VDIFF, "tokenize", "--tokenizer", tokenizer] + args, input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def main():
    failures = 0
    rows = [json.loads(line) for line in open(os.path.join(DATA, "golden.jsonl"), encoding="utf-8")]
    rows = [r for r in rows if "model" in r]
    checked = 0
    per_model = {}
    with tempfile.TemporaryDirectory() as tmp:
        text_path = os.path.join(tmp, "text")
        for r in rows:
            model = os.path.join(DATA, r["model"])
            if not os.path.exists(model):
                continue
            per_model[r["model"]] = per_model.get(r["model"], 0) + 1
            if r["model"] != "vdiff-small.model" and per_model[r["model"]] > 12:
                continue
            with open(text_path, "wb") as f:
                f.write(bytes.fromhex(r["hex"]))
            rc, out, err = tokenize(model, ["--max-tokens", str(r["max_len"]), "--file", text_path])
            got = [int(x) for x in out.split()] if rc == 0 else None
            checked += 1
            if got != r["ids"]:
                failures += 1
                if failures <= 5:
                    print(f"FAILED: {r['model']} {r['hex'][:60]}: got {got} ({err.strip()}), want {r['ids']}")

        # the tokenizer inside a checkpoint, and TEXT as an argument
        small = os.path.join(DATA, "vdiff-small.model")
        ckpt = os.path.join(tmp, "umt5_tok.safetensors")
        p = subprocess.run([VDIFF, "mkmodel", "--arch", "umt5", "--preset", "tiny", "--dtype", "f32",
                            "--tokenizer", small, "-o", ckpt], stdout=subprocess.DEVNULL)
        if p.returncode != 0:
            print("FAILED: mkmodel with --tokenizer")
            failures += 1
        else:
            texts = [r for r in rows if r["model"] == "vdiff-small.model" and r["max_len"] == 512 and "text" in r
                     and "\0" not in r["text"] and not r["text"].startswith("-")]
            for r in texts[:16]:
                rc, out, err = tokenize(ckpt, [r["text"]])
                if rc != 0 or [int(x) for x in out.split()] != r["ids"]:
                    failures += 1
                    print(f"FAILED: checkpoint tokenizer on {r['text'][:40]!r}: {out.strip()} {err.strip()}")
                    break
        # stdin, --no-eos
        hello = [r["ids"] for r in rows if r["model"] == "vdiff-small.model" and r.get("text") == "Hello world"
                 and r["max_len"] == 512][0]
        rc, out, _ = tokenize(small, ["--file", "-", "--no-eos"], stdin=b"Hello world")
        if rc != 0 or [int(x) for x in out.split()] != hello[:-1]:
            print(f"FAILED: --file - --no-eos: {out!r}")
            failures += 1
        # usage errors exit 2, failures 1, each with a message
        for args, code in ((["--bogus", "x"], 2), (["--max-tokens", "-1", "x"], 2), ([], 2),
                           (["a", "b"], 2), (["--file", os.path.join(tmp, "missing"), ], 1)):
            rc, _, err = tokenize(small, args)
            if rc != code or not err.strip():
                print(f"FAILED: tokenize {args}: exit {rc}, want {code}, stderr {err!r}")
                failures += 1
        p = subprocess.run([VDIFF, "tokenize", "--tokenizer", os.path.join(tmp, "missing.model"), "x"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 1 or b"missing.model" not in p.stderr:
            print(f"FAILED: missing tokenizer file: exit {p.returncode}, {p.stderr!r}")
            failures += 1

    print(f"tokenize: {checked} golden entries checked, {failures} failure(s)")
    if checked == 0:
        print("FAILED: no golden entries found")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
