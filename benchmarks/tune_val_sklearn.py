"""Score scikit-learn candidates (logreg C, RBF-SVM C and gamma, kNN k; 116 vs 68 features) on the
inner validation splits of the 10-fold UCI protocol: fit on each fold's training rows, score its
validation rows (test folds unused). This is how the `svm` and `knn` baselines were set.

    .venv/bin/python benchmarks/tune_val_sklearn.py
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from geomusic_lib.data import build_class_table, great_circle_km, load_uci, make_splits
from geomusic_lib.predict import class_distance_matrix
from geomusic_lib.core import params_from_dict


def main() -> None:
    warnings.filterwarnings("ignore")
    threadpool_limits(1)
    split_params = params_from_dict({"split": {"strategy": "kfold", "folds": 10}}).split
    for chromatic in (True, False):
        table = load_uci(chromatic=chromatic)
        splits = make_splits(table.frame, split_params, 42)
        classes = table.classes()
        info = build_class_table(table.frame).set_index("class").loc[classes]
        clat, clon = info["lat"].to_numpy(float), info["lon"].to_numpy(float)
        dist = class_distance_matrix(clat, clon)
        y = table.label_indices()
        x, lat, lon = table.features, table.frame["lat"].to_numpy(), table.frame["lon"].to_numpy()
        n_features = x.shape[1]
        candidates = {}
        for c in (0.03, 0.1, 0.3):
            candidates[f"logreg C={c}"] = lambda c=c: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
        for c in (3, 10, 30):
            for g in (0.5, 1.0):
                candidates[f"svm C={c} gamma={g}/F"] = lambda c=c, g=g: make_pipeline(
                    StandardScaler(), SVC(C=c, gamma=g / n_features, probability=True, random_state=0))
        for k in (5, 10, 20):
            candidates[f"knn k={k}"] = lambda k=k: make_pipeline(StandardScaler(), KNeighborsClassifier(k, weights="distance"))
        for name, make in candidates.items():
            t0 = time.perf_counter()
            hit, nll, km, km_dist = [], [], [], []
            for s in splits:
                est = make().fit(x[s.train], y[s.train])
                proba = np.zeros((len(s.val), len(classes)))
                proba[:, est.classes_] = est.predict_proba(x[s.val])
                yv, top, near = y[s.val], proba.argmax(1), (proba @ dist).argmin(1)
                hit.append(top == yv)
                nll.append(-np.log(np.clip(proba[np.arange(len(yv)), yv], 1e-6, 1)))
                km.append(great_circle_km(clat[top], clon[top], lat[s.val], lon[s.val]))
                km_dist.append(great_circle_km(clat[near], clon[near], lat[s.val], lon[s.val]))
            cat = np.concatenate
            print(f"F={n_features} {name:22s} val_acc {cat(hit).mean():.3f} val_nll {cat(nll).mean():.2f} "
                  f"km {np.mean(cat(km)):.0f} km_distance {np.mean(cat(km_dist)):.0f}  {time.perf_counter() - t0:.0f} s",
                  flush=True)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
