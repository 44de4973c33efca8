#!/bin/sh
# main-job.sh CLI THREADS - the README's main job: get Tiny Shakespeare, prepare it
# character-level, train the baby GPT (4 layers, 4 heads, 128 channels, context 64,
# batch 12, lr 1e-3 cosine to 1e-4, warmup 100, 2000 steps), print the validation loss
# and a 300-character sample.
set -e
cli="$1"; threads="${2:-2}"
url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
sha="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
mkdir -p data runs
txt=data/tinyshakespeare.txt
if [ ! -s "$txt" ]; then
    if [ -s ../shared/data/tinyshakespeare.txt ]; then
        cp ../shared/data/tinyshakespeare.txt "$txt"
    else
        echo "downloading Tiny Shakespeare from $url"
        command -v curl >/dev/null 2>&1 || command -v wget >/dev/null 2>&1 || \
            sh "$(dirname "$0")/ensure-deps.sh" curl ca-certificates || true
        if command -v curl >/dev/null 2>&1; then
            curl -fsSL --max-time 60 -o "$txt.part" "$url" || dl_failed=1
        elif command -v wget >/dev/null 2>&1; then
            wget -q -T 60 -O "$txt.part" "$url" || dl_failed=1
        else
            dl_failed=1
        fi
        if [ -n "$dl_failed" ]; then
            rm -f "$txt.part"
            echo "error: could not download Tiny Shakespeare (offline?). Put the text at $txt" \
                 "(1,115,394 bytes, sha256 $sha) and run again." >&2
            exit 1
        fi
        mv "$txt.part" "$txt"
    fi
fi
if command -v sha256sum >/dev/null 2>&1; then
    got=$(sha256sum "$txt" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || echo "warning: $txt has sha256 $got, expected $sha" >&2
fi
"$cli" prepare --input "$txt" --tokenizer char --out data/shakespeare_char
start=$(date +%s)
"$cli" train --data data/shakespeare_char/train.bin --val-data data/shakespeare_char/val.bin \
    --layers 4 --heads 4 --channels 128 --context 64 -b 12 -t 64 --steps 2000 \
    --lr 1e-3 --lr-min 1e-4 --warmup 100 --schedule cosine --wd 0.1 --clip 1.0 \
    --eval-every 500 --eval-batches 100 --log-every 100 --threads "$threads" --seed 1337 \
    --out runs/baby-shakespeare
end=$(date +%s)
echo "wall time (train): $((end - start)) s"
echo "--- sample (300 characters, temperature 0.8, top-k 40) ---"
"$cli" sample --model runs/baby-shakespeare/model.etck --length 300 --temperature 0.8 --top-k 40 \
    --seed 42 --prompt "ROMEO:"
echo "--- loss curve: runs/baby-shakespeare/loss.svg"
