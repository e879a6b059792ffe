# Sourced by the synthetic-data scripts: the environment, the dataset (made once), and the recipe.
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$_repo"
source scripts/setup_env.sh
DATA="${PAN_DATA_ROOT:-./data}"
"$PY" tools/gen_synthetic.py --root_path "$DATA" || exit 1
# Small frames, ResNet-18 from scratch, 4 segments: minutes on a 2-core CPU. AdamW, because SGD at
# the release's fine-tuning learning rates does not get going from scratch in this budget. The
# scripts add the batch size and the number of epochs.
RECIPE=(--root_path "$DATA" --arch resnet18 --pretrain scratch --num_segments 4 --input_size 64
        --optimizer adamw --lr 0.001 --wd 1e-4 --lr_type cos -j 2)
