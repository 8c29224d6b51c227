"""One rank of a kNN sweep over k (the PESC paper's scenarios 3 and 4), on
scikit-learn's bundled digits (8x8 images, 1797 samples; MNIST needs a
download, this does not).

Rank r of W scores k = r + 1, r + 1 + W, ... up to K with stratified
FOLDS-fold cross-validation and prints one line per k; rank 0 of 1 is the
sequential sweep. Needs Debian's python3-sklearn.

    pesc run --repetitions 16 knn_digits.py -- 16 3     # k = 1..16, 3-fold CV
"""
import argparse,os
parser=argparse.ArgumentParser()
parser.add_argument("--app_dir","-a",default=f"{os.getcwd()}/")
parser.add_argument("--checkpoint_dir","-c",default=f"{os.getcwd()}/checkpoint")
parser.add_argument("--output_dir","-o",default=f"{os.getcwd()}/output")
parser.add_argument("--rank","-r",type=int, default=0)
parser.add_argument("--world_size","-w",type=int, default=1)
parser.add_argument("--master_addr","-d",default="127.0.0.1")
parser.add_argument("--master_port","-t",type=int, default=9000)
parser.add_argument("--parameters","-p",nargs="*",default=[])
args=parser.parse_args()

from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

if len(args.parameters) != 2:
    parser.error("parameters are K (largest k) and FOLDS (of the cross-validation)")
largest_k, fold_count = int(args.parameters[0]), int(args.parameters[1])
images, labels = load_digits(return_X_y=True)
# The same folds for every k and every rank: the scores differ only by k.
folds = StratifiedKFold(n_splits=fold_count, shuffle=True, random_state=0)
for k in range(args.rank + 1, largest_k + 1, args.world_size):
    # n_jobs=1: one rank is one core's work; the farm supplies the parallelism.
    scores = cross_val_score(KNeighborsClassifier(n_neighbors=k, algorithm="brute"), images, labels, cv=folds,
                             n_jobs=1)
    print(f"k={k} accuracy={scores.mean():.4f} sd={scores.std():.4f}")
