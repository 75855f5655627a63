# Shared option handling of the example scripts (sourced, not run).
#
# Reads the options below (or the VDIFF_* environment variables) and sets
#   VDIFFSRC  an array: the vdiffsrc element and its properties, for gst-launch-1.0
#   CAPS      the caps after it (video/x-raw with the size and rate asked for)
#   OUTPUT    the output file
#   LAUNCH    an array: gst-launch-1.0 and its options
# Every value is quoted for gst-launch's parser, so prompts and paths may hold
# spaces, quotes and '!'.

vdiff_usage() {
    cat <<USAGE
usage: $(basename "$0") [options] PROMPT [OUTPUT.mp4]

Generate a clip with vdiffsrc and encode it to an MP4 file (default out.mp4).

model files (or the environment variables):
  --model FILE            Wan text-to-video DiT (.safetensors/.gguf)   \$VDIFF_MODEL
  --vae FILE              Wan VAE                                      \$VDIFF_VAE
  --text-encoder FILE     umT5 text encoder                            \$VDIFF_TEXT_ENCODER
  --tokenizer FILE        SentencePiece model (default: the encoder's own) \$VDIFF_TOKENIZER
generation (default: the model's own):
  --negative-prompt TEXT  what the clip should not show
  --width N --height N    size, multiples of 16                        \$VDIFF_WIDTH \$VDIFF_HEIGHT
  --fps N                 frame rate                                   \$VDIFF_FPS
  --frames N              clip length, 4k+1 (5, 9, ..., 81)            \$VDIFF_FRAMES
  --steps N               sampling steps                               \$VDIFF_STEPS
  --seed N                noise seed                                   \$VDIFF_SEED
  --guidance X --shift X --sampler unipc|euler
  --device DEV            cpu, cuda, cuda:N                            \$VDIFF_DEVICE
  --allocation STR        weight placement, e.g. "cuda:0,8gb;cpu,*"    \$VDIFF_ALLOCATION
  --threads N             CPU threads (0: all cores)
  --quiet                 do not print progress messages
USAGE
}

# Quote a value for gst-launch-1.0: "value" with \ and " escaped.
gst_quote() {
    local s=${1//\\/\\\\}
    printf '"%s"' "${s//\"/\\\"}"
}

vdiff_parse_args() {
    local model=${VDIFF_MODEL:-} vae=${VDIFF_VAE:-} te=${VDIFF_TEXT_ENCODER:-}
    local tokenizer=${VDIFF_TOKENIZER:-} device=${VDIFF_DEVICE:-}
    local allocation=${VDIFF_ALLOCATION:-} width=${VDIFF_WIDTH:-} height=${VDIFF_HEIGHT:-}
    local fps=${VDIFF_FPS:-} frames=${VDIFF_FRAMES:-} steps=${VDIFF_STEPS:-}
    local seed=${VDIFF_SEED:-} negative="" guidance="" shift_="" sampler="" threads=""
    local quiet=${VDIFF_QUIET:-} prompt="" have_prompt=0
    OUTPUT=""

    while [ $# -gt 0 ]; do
        case "$1" in
        --model) model=$2; shift ;;
        --vae) vae=$2; shift ;;
        --text-encoder) te=$2; shift ;;
        --tokenizer) tokenizer=$2; shift ;;
        --negative-prompt) negative=$2; shift ;;
        --width) width=$2; shift ;;
        --height) height=$2; shift ;;
        --fps) fps=$2; shift ;;
        --frames) frames=$2; shift ;;
        --steps) steps=$2; shift ;;
        --seed) seed=$2; shift ;;
        --guidance) guidance=$2; shift ;;
        --shift) shift_=$2; shift ;;
        --sampler) sampler=$2; shift ;;
        --device) device=$2; shift ;;
        --allocation) allocation=$2; shift ;;
        --threads) threads=$2; shift ;;
        --quiet) quiet=1 ;;
        -h|--help) vdiff_usage; exit 0 ;;
        --) shift; break ;;
        -*) echo "$(basename "$0"): unknown option $1" >&2; vdiff_usage >&2; exit 2 ;;
        *)
            if [ $have_prompt = 0 ]; then prompt=$1; have_prompt=1
            elif [ -z "$OUTPUT" ]; then OUTPUT=$1
            else echo "$(basename "$0"): too many arguments" >&2; exit 2
            fi ;;
        esac
        shift
    done
    while [ $# -gt 0 ]; do
        if [ $have_prompt = 0 ]; then prompt=$1; have_prompt=1; else OUTPUT=$1; fi
        shift
    done

    if [ $have_prompt = 0 ] || [ -z "$model" ] || [ -z "$vae" ] || [ -z "$te" ]; then
        echo "$(basename "$0"): a prompt and the model files (--model, --vae, --text-encoder) are needed" >&2
        vdiff_usage >&2
        exit 2
    fi
    OUTPUT=${OUTPUT:-out.mp4}

    VDIFFSRC=(vdiffsrc "model=$(gst_quote "$model")" "vae=$(gst_quote "$vae")"
              "text-encoder=$(gst_quote "$te")" "prompt=$(gst_quote "$prompt")")
    [ -n "$tokenizer" ] && VDIFFSRC+=("tokenizer=$(gst_quote "$tokenizer")")
    [ -n "$negative" ] && VDIFFSRC+=("negative-prompt=$(gst_quote "$negative")")
    [ -n "$frames" ] && VDIFFSRC+=("frames=$frames")
    [ -n "$steps" ] && VDIFFSRC+=("steps=$steps")
    [ -n "$seed" ] && VDIFFSRC+=("seed=$seed")
    [ -n "$guidance" ] && VDIFFSRC+=("guidance=$guidance")
    [ -n "$shift_" ] && VDIFFSRC+=("shift=$shift_")
    [ -n "$sampler" ] && VDIFFSRC+=("sampler=$sampler")
    [ -n "$device" ] && VDIFFSRC+=("device=$(gst_quote "$device")")
    [ -n "$allocation" ] && VDIFFSRC+=("allocation=$(gst_quote "$allocation")")
    [ -n "$threads" ] && VDIFFSRC+=("threads=$threads")

    CAPS=video/x-raw
    [ -n "$width" ] && CAPS="$CAPS,width=$width"
    [ -n "$height" ] && CAPS="$CAPS,height=$height"
    [ -n "$fps" ] && CAPS="$CAPS,framerate=$fps/1"

    # -e: finish the file properly on Ctrl-C; -m: print the progress messages.
    LAUNCH=(gst-launch-1.0 -e)
    [ -z "$quiet" ] && LAUNCH+=(-m)
    return 0
}
