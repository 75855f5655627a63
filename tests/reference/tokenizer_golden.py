#!/usr/bin/env python3
"""Golden data for the C SentencePiece tokenizer (engine/models/tokenizer.h).

Trains small Unigram models on tests/data/tokenizer/corpus.txt with the
Python `sentencepiece` module (any version), encodes a fixed list of test
strings with each model the way umT5 is used (EOS appended, truncated to
max_len tokens including the EOS, as Hugging Face truncation does), and
writes under tests/data/tokenizer/:

  vdiff-small.model           vocab 2000, umT5 id layout (pad 0, eos 1, unk 2,
                              no bos), byte_fallback, nmt_nfkc: the project's
                              default small tokenizer
  vdiff-tiny-raw.model        add_dummy_prefix=False, remove_extra_whitespaces=False
  vdiff-tiny-unk.model        no byte_fallback (unknowns -> <unk>), nmt_nfkc_cf,
                              user-defined and control symbols, split_digits
  vdiff-tiny-suffix.model     identity normalization, treat_whitespace_as_suffix
  vdiff-tiny-noescape.model   vdiff-tiny-raw with escape_whitespaces=False and
                              remove_extra_whitespaces=True patched into its
                              normalizer_spec (the trainer has no flag for it)
  vdiff-small.tokenizer.json  vdiff-small written as a Hugging Face
                              tokenizer.json (T5 layout: Precompiled charsmap,
                              WhitespaceSplit + Metaspace, Unigram)
  golden.jsonl                one line per (model, text):
                              {"model", "text" (when valid UTF-8), "hex",
                               "max_len", "ids"}

Deterministic: fixed seeds, one thread, fixed inputs.  Run from anywhere:
    /usr/bin/python3 tests/reference/tokenizer_golden.py
"""

import base64
import json
import os
import shutil
import struct
import sys
import tempfile

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "data", "tokenizer"))
CORPUS = os.path.join(DATA, "corpus.txt")

COMMON = dict(model_type="unigram", num_threads=1, minloglevel=2,
              shuffle_input_sentence=False)

MODELS = [
    ("vdiff-small", dict(vocab_size=2000, byte_fallback=True,
                         normalization_rule_name="nmt_nfkc",
                         character_coverage=1.0,
                         pad_id=0, eos_id=1, unk_id=2, bos_id=-1)),
    ("vdiff-tiny-raw", dict(vocab_size=700, byte_fallback=True,
                            normalization_rule_name="nmt_nfkc",
                            character_coverage=0.98,
                            add_dummy_prefix=False,
                            remove_extra_whitespaces=False)),
    ("vdiff-tiny-unk", dict(vocab_size=800, byte_fallback=False,
                            normalization_rule_name="nmt_nfkc_cf",
                            character_coverage=0.98,
                            user_defined_symbols="<sep>,☃☃,ing the",
                            control_symbols="<ctl>,<2en>",
                            split_digits=True)),
    ("vdiff-tiny-suffix", dict(vocab_size=600, byte_fallback=True,
                               character_coverage=0.98,
                               normalization_rule_name="identity",
                               treat_whitespace_as_suffix=True)),
]

# --- a minimal protobuf wire reader/writer (no protobuf module needed) ---


def read_varint(buf, pos):
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def write_varint(value):
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def parse_fields(buf):
    """[(field, wire_type, raw payload bytes or int)] of one message."""
    fields, pos = [], 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = read_varint(buf, pos)
        elif wt == 1:
            v, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            n, pos = read_varint(buf, pos)
            v, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            v, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError("unexpected wire type %d" % wt)
        fields.append((field, wt, v))
    return fields


def serialize_fields(fields):
    out = bytearray()
    for field, wt, v in fields:
        out += write_varint(field << 3 | wt)
        if wt == 0:
            out += write_varint(v)
        elif wt == 2:
            out += write_varint(len(v)) + v
        else:
            out += v
    return bytes(out)


def normalizer_spec(model_bytes):
    for field, wt, v in parse_fields(model_bytes):
        if field == 3 and wt == 2:
            return parse_fields(v)
    return []


def patch_normalizer(model_bytes, overrides):
    """Set bool fields of normalizer_spec: {field_number: value}."""
    top = parse_fields(model_bytes)
    out = []
    for field, wt, v in top:
        if field == 3 and wt == 2:
            spec = [f for f in parse_fields(v) if f[0] not in overrides]
            spec += [(k, 0, int(val)) for k, val in sorted(overrides.items())]
            v = serialize_fields(spec)
        out.append((field, wt, v))
    return serialize_fields(out)


# --- Hugging Face tokenizer.json in the T5 layout ---


def write_tokenizer_json(sp, model_bytes, path):
    charsmap = b""
    for field, wt, v in normalizer_spec(model_bytes):
        if field == 2 and wt == 2:
            charsmap = bytes(v)
    vocab = [[sp.id_to_piece(i), float(sp.get_score(i))]
             for i in range(sp.get_piece_size())]
    added = []
    for i in range(sp.get_piece_size()):
        if sp.is_control(i) or sp.is_unknown(i):
            added.append({"id": i, "content": sp.id_to_piece(i),
                          "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False,
                          "special": True})
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Precompiled",
                       "precompiled_charsmap":
                           base64.b64encode(charsmap).decode("ascii")},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"},
            {"type": "Metaspace", "replacement": "\u2581",
             "add_prefix_space": True}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "</s>",
                                                        "type_id": 0}}]},
        "decoder": {"type": "Metaspace", "replacement": "\u2581",
                    "add_prefix_space": True},
        "model": {"type": "Unigram", "unk_id": sp.unk_id(),
                  "vocab": vocab, "byte_fallback": True},
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)
        f.write("\n")


# --- test strings ---


def test_texts():
    t = [
        "",
        "Hello world",
        "A cat sits on a windowsill watching snowflakes fall past the glass.",
        "A cinematic shot of a city street at night, neon signs reflected in "
        "puddles, people hurrying under umbrellas.",
        "   leading spaces",
        "trailing spaces   ",
        "multiple     internal    spaces",
        "tabs\tand\nnewlines\r\nmixed\vvertical\fform",
        "\t\n  \t",
        " ",
        "x",
        "a b",
        "ＡＢＣ full-width ＡＢＣ１２３",
        "Ｈｅｌｌｏ\u3000Ｗｏｒｌｄ",
        "ﬁne ﬂower ﬃ ligatures",
        "①②③ circled ⑳",
        "㎏ ㎞ ㎡ ℃ ™ №",
        "café crème brûlée",
        "cafe\u0301 cre\u0300me",
        "Ångström \u212b \u00c5 A\u030a",
        "一只小猫在窗台上晒太阳，眼睛半闭着。",
        "龘龖齉 靐 unseen hanzi",
        "I \u2764\ufe0f \U0001F355 and \U0001F3AC!",
        "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 family",
        "שלום עולם",
        "مرحبا بالعالم",
        "नमस्ते दुनिया",
        "สวัสดีครับ",
        "3.14159 2024-05-01 1,000,000 +44 20 7946",
        "!!!??? ... --- ((())) [[]] {{}} <<>>",
        "Zürich \U0001D518\U0001D52B\U0001D526\U0001D520\U0001D52C\U0001D521\U0001D522",
        "\u00a0non\u00a0breaking\u00a0spaces\u00a0",
        "\u3000ideographic space\u3000",
        "zero\u200bwidth\u200bspace \u200b",
        "soft\u00adhyphen and\u2060joiner",
        "bell\x07 and \x1b[0m escape",
        "nul\x00byte",
        "U+FFFD literal \ufffd here",
        "HELLO World MiXeD CaSe",
        "a<sep>b ☃☃ snow<sep> singing the song",
        "<ctl> </s> <pad> <unk> <s> <2en>",
        "<0x41> <0xFF> bytes lookalike",
        "\u2581 already escaped \u2581\u2581 x\u2581y",
        "Ο ήλιος λάμπει πάνω από τη θάλασσα.",
        "Москва — столица России.",
        "Kỳ nghỉ hè năm nay chúng tôi đi biển.",
        "日本の桜は春に咲きます。한국의 가을 하늘.",
        "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，"
        "整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的",
        "Email hello@vdiff.org or visit https://example.org/docs/index.html?a=1&b=2",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ".....",
        "abc中文def",
        "Ⅻ Ⅳ roman numerals ⅷ",
        "½ ¼ ¾ fractions",
        "ｶﾀｶﾅ half-width katakana ﾊﾟ",
        "x² + y³ = z⁴, H₂O",
        "wait… what‽",
        "\u1112\u1161\u11ab jamo",
        "supercalifragilisticexpialidocious " * 5,
        "\r",
        "\n\n\n",
        "em—dash en–dash hy‐phen minus−sign",
        "Z\u0324\u0354\u0367\u0311\u0313a\u0308\u0356\u032d\u0308\u0307l\u036e",
        "ǅ ǈ ǋ digraphs ß ẞ",
        "col1\tcol2\tcol3",
        "The year 1969: 12 astronauts, 6 landings; 0.5% of 1,000 is 5.",
        "Ça alors ! Tu as déjà fini tout le gâteau ?",
        "Über den Wolken, Straße, Fußball, ÄÖÜ äöü",
        "\u00ad\u200b leading invisible",
        "trailing invisible \u200b\u00ad",
    ]
    # Long inputs for truncation at 512.
    sentence = "A golden retriever runs along the beach, chasing waves. "
    t.append((sentence * 40)[:2000])
    t.append(("一位年轻的女孩在雨中撑着红色的雨伞走过街道。" * 100)[:2000])
    t.append(" ".join(str(i) for i in range(700)))
    return [s.encode("utf-8") for s in t] + [
        # Invalid UTF-8: each bad byte becomes U+FFFD.
        b"bad \xff\xfe bytes",
        b"\xc3",
        b"trunc \xe4\xbd",
        b"\xed\xa0\x80 surrogate",
        b"overlong \xc0\xaf slash",
        b"\xf4\x90\x80\x80 beyond U+10FFFF",
        b"lone continuation \x80\xbf end",
        b"\xe4\xbd\xa0\xe5\xa5 mixed \xe5\xa5\xbd",
    ]


# (text index, max_len) pairs with small limits, on top of 512 for all.
SHORT_LIMITS = [(1, 1), (1, 2), (2, 5), (3, 8), (20, 4)]


def encode(sp, text, max_len):
    ids = list(sp.encode(text))
    return ids[:max_len - 1] + [sp.eos_id()]


def main():
    os.makedirs(DATA, exist_ok=True)
    if hasattr(spm, "set_random_generator_seed"):
        spm.set_random_generator_seed(1234)
    texts = test_texts()
    processors = {}
    # The trainer records its input and output paths in the model: train in
    # a scratch directory under fixed relative names so the bytes do not
    # depend on where the repository lives.
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(CORPUS, os.path.join(tmp, "corpus.txt"))
        os.chdir(tmp)
        try:
            for name, opts in MODELS:
                spm.SentencePieceTrainer.train(input="corpus.txt",
                                               model_prefix=name,
                                               **COMMON, **opts)
                with open(name + ".model", "rb") as f:
                    processors[name] = f.read()
        finally:
            os.chdir(cwd)
    # escape_whitespaces (5) off, remove_extra_whitespaces (4) on.
    processors["vdiff-tiny-noescape"] = patch_normalizer(
        processors["vdiff-tiny-raw"], {4: True, 5: False})

    lines = []
    for name, blob in processors.items():
        path = os.path.join(DATA, name + ".model")
        with open(path, "wb") as f:
            f.write(blob)
        sp = spm.SentencePieceProcessor(model_file=path)
        if sp.eos_id() < 0:
            sys.exit("%s: model has no EOS" % name)
        cases = [(i, 512) for i in range(len(texts))] + SHORT_LIMITS
        for i, max_len in cases:
            raw = texts[i]
            rec = {"model": name + ".model"}
            try:
                rec["text"] = raw.decode("utf-8")
            except UnicodeDecodeError:
                pass
            rec["hex"] = raw.hex()
            rec["max_len"] = max_len
            rec["ids"] = encode(sp, raw, max_len)
            lines.append(rec)
        if name == "vdiff-small":
            write_tokenizer_json(sp, blob,
                                 os.path.join(DATA, name + ".tokenizer.json"))

    with open(os.path.join(DATA, "golden.jsonl"), "w", encoding="utf-8") as f:
        f.write(json.dumps({"generator": "tests/reference/tokenizer_golden.py",
                            "sentencepiece": spm.__version__,
                            "texts": len(texts)}, ensure_ascii=False) + "\n")
        for rec in lines:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print("wrote %d golden lines for %d models (sentencepiece %s) to %s"
          % (len(lines), len(processors), spm.__version__, DATA))


if __name__ == "__main__":
    main()
