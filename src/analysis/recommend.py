"""Product recommendations for clienteling, and the evaluation that says whether they are any good.

One small module per model family (see the house style): :class:`ItemKNNRecommender` is a
recency-weighted, BM25-weighted item-to-item recommender on sparse matrices and :class:`EASERecommender`
the closed-form linear model that wins the evaluation (the BM25 weighting is that of
``implicit.nearest_neighbours.BM25Recommender``, written on scipy so no new dependency is needed); :class:`PopularityRecommender` and :class:`SegmentPopularityRecommender` are the
baselines it has to beat. :func:`time_split` and :func:`evaluate_recommenders` hold out the last
part of the period and score every recommender the same way (hit rate@k, recall@k, coverage).

Every recommender takes transactions (``customer_id``, ``product_id``, optionally ``timestamp``), or the path of
their Parquet file (read in place by DuckDB), in ``fit`` and returns ``self``; ``recommend(customers, n)`` returns one row per
client and rank (``customer_id``, ``rank``, ``product_id``, ``score``), never a product the client
already bought.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

REC_COLUMNS = ["customer_id", "rank", "product_id", "score"]


def _dates(transactions: pd.DataFrame) -> pd.Series | None:
    """Purchase times: the contract's ``timestamp`` (or ``order_date``)."""
    for col in ("timestamp", "order_date"):
        if col in transactions:
            return pd.to_datetime(transactions[col])
    return None


def _check_fitted(model: Any) -> None:
    if not hasattr(model, "products_"):
        raise RuntimeError(f"{type(model).__name__} is not fitted yet: call fit(transactions) first.")


def _interactions(transactions: pd.DataFrame | str | Path, half_life_days: float | None = None) -> tuple[sparse.csr_matrix, pd.Index, pd.Index]:
    """Client x product matrix: purchase occasions (invoice days), each weighted by recency when ``half_life_days`` is set.

    ``transactions``: order lines, or the path of their Parquet file, which DuckDB reads in place (the
    same matrix, without loading the order lines).
    """
    if not isinstance(transactions, pd.DataFrame):
        return _interactions_in_place(transactions, half_life_days)
    tx = transactions
    cust_codes, customers = pd.factorize(tx["customer_id"].astype(str), sort=True)
    prod_codes, products = pd.factorize(tx["product_id"].astype(str), sort=True)
    weight = np.ones(len(tx), dtype=np.float64)
    dates = _dates(tx) if half_life_days else None
    if dates is not None:
        age_days = (dates.max() - dates).dt.total_seconds().to_numpy() / 86_400.0
        weight = np.power(0.5, age_days / float(half_life_days))
    X = sparse.csr_matrix((weight, (cust_codes, prod_codes)), shape=(len(customers), len(products)))
    X.sum_duplicates()
    return X, pd.Index(customers), pd.Index(products)


def _interactions_in_place(path: str | Path, half_life_days: float | None) -> tuple[sparse.csr_matrix, pd.Index, pd.Index]:
    """:func:`_interactions` of a Parquet file: DuckDB numbers clients and products in sorted order (as
    ``pd.factorize(sort=True)``) and counts each pair; with a half-life it returns each line's age in
    file order instead, weighted here exactly as for a DataFrame."""
    from .engines import DuckDBEngine, parquet_scan

    with DuckDBEngine() as engine:
        engine.register("tx", path)
        dated = bool(half_life_days) and "timestamp" in engine.columns("tx")
        con = engine.con_
        newest = con.execute('SELECT epoch_ns(max("timestamp")) FROM tx').fetchone()[0] if dated else None
        dated = newest is not None  # an empty file has no ages: an empty matrix either way
        if dated:
            source = f"""SELECT CAST(customer_id AS VARCHAR) AS c, CAST(product_id AS VARCHAR) AS p,
                                {newest} - epoch_ns("timestamp") AS age_ns, file_row_number AS line
                         FROM {parquet_scan(path, row_numbers=True)}"""
        else:
            source = "SELECT CAST(customer_id AS VARCHAR) AS c, CAST(product_id AS VARCHAR) AS p FROM tx"
        con.execute(f"CREATE VIEW lines AS {source}")
        customers = con.execute("SELECT DISTINCT c FROM lines ORDER BY c").df()["c"]
        products = con.execute("SELECT DISTINCT p FROM lines ORDER BY p").df()["p"]
        numbered = """lines JOIN (SELECT c, CAST(row_number() OVER (ORDER BY c) - 1 AS INTEGER) AS ci FROM (SELECT DISTINCT c FROM lines)) USING (c)
                      JOIN (SELECT p, CAST(row_number() OVER (ORDER BY p) - 1 AS INTEGER) AS pi FROM (SELECT DISTINCT p FROM lines)) USING (p)"""
        if dated:  # one row per line, in file order, so the weights are summed as for a DataFrame
            pairs = con.execute(f"SELECT ci, pi, age_ns FROM {numbered} ORDER BY line").fetchnumpy()
            weight = np.power(0.5, pairs["age_ns"] / 1e9 / 86_400.0 / float(half_life_days))
        else:  # counts are exact in any order
            pairs = con.execute(f"SELECT ci, pi, CAST(count(*) AS DOUBLE) AS n FROM {numbered} GROUP BY ci, pi").fetchnumpy()
            weight = pairs["n"]
    X = sparse.csr_matrix((np.asarray(weight, dtype=np.float64), (pairs["ci"], pairs["pi"])), shape=(len(customers), len(products)))
    X.sum_duplicates()
    return X, pd.Index(customers.to_numpy(), dtype="str"), pd.Index(products.to_numpy(), dtype="str")


def _bm25(X: sparse.csr_matrix, k1: float, b: float) -> sparse.csr_matrix:
    """BM25 weighting of a client x product matrix (rows are documents, as in ``implicit``)."""
    X = X.tocsr(copy=True).astype(np.float64)
    n_clients = X.shape[0]
    doc_freq = np.bincount(X.indices, minlength=X.shape[1])
    idf = np.log(n_clients) - np.log1p(doc_freq)
    row_sums = np.asarray(X.sum(axis=1)).ravel()
    length_norm = (1.0 - b) + b * row_sums / max(row_sums.mean(), 1e-12)
    rows = np.repeat(np.arange(n_clients), np.diff(X.indptr))
    X.data = X.data * (k1 + 1.0) / (k1 * length_norm[rows] + X.data) * idf[X.indices]
    return X


def _top_n(scores_for, owned: sparse.csr_matrix, wanted: np.ndarray, customers: pd.Index, products: pd.Index, n: int, chunk: int) -> pd.DataFrame:
    """Top ``n`` products per wanted client, owned products excluded, in bounded-memory chunks."""
    n = min(n, len(products))
    parts = []
    for start in range(0, len(wanted), chunk):  # each chunk is one dense block of scores
        idx = wanted[start:start + chunk]
        scores = scores_for(idx)
        block = owned[idx].tocoo()
        scores[block.row, block.col] = -np.inf
        top = np.argpartition(-scores, kth=n - 1, axis=1)[:, :n]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top, top_scores = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_scores, order, axis=1)
        parts.append(pd.DataFrame({
            "customer_id": np.repeat(customers[idx].to_numpy(), n),
            "rank": np.tile(np.arange(1, n + 1), len(idx)),
            "product_id": products[top.ravel()].to_numpy(),
            "score": top_scores.ravel(),
        }))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=REC_COLUMNS)
    return out[np.isfinite(out["score"].astype(float))].reset_index(drop=True)


def _wanted(customers_: pd.Index, customers: pd.Index | None) -> np.ndarray:
    if customers is None:
        return np.arange(len(customers_))
    idx = customers_.get_indexer(pd.Index(customers).astype(str))
    return idx[idx >= 0]


def _recommend(model: Any, scores_for: Callable[[np.ndarray], np.ndarray], customers: pd.Index | None, n: int,
               chunk: int) -> pd.DataFrame:
    """The top-``n`` step every recommender shares: refuse an unfitted ``model``, then rank ``scores_for`` over the
    wanted clients (all of them when ``customers`` is None)."""
    _check_fitted(model)
    return _top_n(scores_for, model.owned_, _wanted(model.customers_, customers), model.customers_, model.products_, n, chunk)


def _positions(model: Any, recs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each recommendation (client and product) in a fitted ``model``'s matrices; -1 where unknown."""
    _check_fitted(model)
    return model.customers_.get_indexer(recs["customer_id"].astype(str)), model.products_.get_indexer(recs["product_id"].astype(str))


class PopularityRecommender:
    """Most-bought products (by number of clients) that the client does not own yet: the baseline."""

    def fit(self, transactions: pd.DataFrame) -> PopularityRecommender:
        self.owned_, self.customers_, self.products_ = _interactions(transactions)
        self.owned_.data[:] = 1.0
        self.popularity_ = np.asarray(self.owned_.sum(axis=0)).ravel()
        return self

    def recommend(self, customers: pd.Index | None = None, n: int = 10, chunk: int = 5_000) -> pd.DataFrame:
        return _recommend(self, lambda idx: np.tile(self.popularity_.astype(np.float64), (len(idx), 1)), customers, n, chunk)


class SegmentPopularityRecommender:
    """Most-bought products within the client's segment (whole-base popularity breaks ties and fills gaps).

    Parameters
    ----------
    segments : Series mapping ``customer_id`` to a segment label (any basis).
    """

    def __init__(self, segments: pd.Series):
        self.segments = segments

    def fit(self, transactions: pd.DataFrame) -> SegmentPopularityRecommender:
        self.owned_, self.customers_, self.products_ = _interactions(transactions)
        self.owned_.data[:] = 1.0
        seg = pd.Series(self.segments.to_numpy(), index=self.segments.index.astype(str))
        self.client_segment_ = seg.reindex(self.customers_).fillna("(no segment)").astype(str).to_numpy()
        seg_codes, self.segment_labels_ = pd.factorize(self.client_segment_)
        member = sparse.csr_matrix((np.ones(len(seg_codes)), (seg_codes, np.arange(len(seg_codes)))), shape=(len(self.segment_labels_), len(seg_codes)))
        overall = np.asarray(self.owned_.sum(axis=0)).ravel()
        self.segment_popularity_ = np.asarray((member @ self.owned_).todense()) + overall / max(overall.max(), 1) * 1e-3
        self.client_segment_code_ = seg_codes
        return self

    def recommend(self, customers: pd.Index | None = None, n: int = 10, chunk: int = 5_000) -> pd.DataFrame:
        return _recommend(self, lambda idx: self.segment_popularity_[self.client_segment_code_[idx]].copy(), customers, n, chunk)


class ItemKNNRecommender:
    """Item-to-item recommender: BM25-weighted co-purchase similarity, recency-weighted history.

    ``score(client, product) = history(client) @ S`` with ``S = B.T @ B`` (``B`` the BM25-weighted
    client x product matrix, as ``implicit``'s ``BM25Recommender``), each item keeping its
    ``neighbours`` most similar items. Whole-base popularity breaks ties and fills in for clients with
    no co-purchase signal.

    Parameters
    ----------
    weighting : "bm25" or "cosine" (plain item-item cosine on bought / not bought).
    k1, b : BM25 saturation and length normalisation.
    half_life_days : recency weight of a purchase in the client's history (None: all purchases equal).
    neighbours : similar items kept per item (None: all).

    Examples
    --------
    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"], "product_id": ["bread", "butter", "bread", "butter", "bread"]})
    >>> ItemKNNRecommender().fit(tx).recommend(pd.Index(["c"]), n=1)["product_id"].tolist()
    ['butter']
    """

    def __init__(self, weighting: str = "bm25", k1: float = 1.2, b: float = 0.75, half_life_days: float | None = 90.0,
                 neighbours: int | None = 100):
        self.weighting = weighting
        self.k1 = k1
        self.b = b
        self.half_life_days = half_life_days
        self.neighbours = neighbours

    def fit(self, transactions: pd.DataFrame) -> ItemKNNRecommender:
        if self.weighting not in ("bm25", "cosine"):
            raise ValueError(f"ItemKNNRecommender: weighting must be 'bm25' or 'cosine', got {self.weighting!r}.")
        counts, self.customers_, self.products_ = _interactions(transactions)
        self.owned_ = counts.copy()
        self.owned_.data[:] = 1.0
        history, _, _ = _interactions(transactions, self.half_life_days)
        self.history_ = history.astype(np.float32)
        if self.weighting == "bm25":
            weighted = _bm25(counts, self.k1, self.b)
            sim = (weighted.T @ weighted).tocsr()
        else:
            norms = np.sqrt(np.asarray(self.owned_.sum(axis=0)).ravel())
            inv = sparse.diags(1.0 / np.where(norms > 0, norms, 1.0))
            sim = (inv @ (self.owned_.T @ self.owned_) @ inv).tocsr()
        sim.setdiag(0)
        sim.eliminate_zeros()
        self.similarity_ = self._keep_neighbours(sim).astype(np.float32)
        popularity = np.asarray(self.owned_.sum(axis=0)).ravel()
        self.popularity_ = popularity
        self._fill = (popularity / max(popularity.max(), 1) * 1e-6).astype(np.float32)
        return self

    def _keep_neighbours(self, sim: sparse.csr_matrix) -> sparse.csr_matrix:
        if not self.neighbours:
            return sim
        coo = sim.tocoo()
        frame = pd.DataFrame({"row": coo.row, "col": coo.col, "value": coo.data})
        kept = frame.sort_values(["row", "value"], ascending=[True, False]).groupby("row").head(self.neighbours)
        return sparse.csr_matrix((kept["value"].to_numpy(), (kept["row"].to_numpy(), kept["col"].to_numpy())), shape=sim.shape)

    def score(self, idx: np.ndarray) -> np.ndarray:
        """Dense scores (clients ``idx`` x every product)."""
        return np.asarray((self.history_[idx] @ self.similarity_).todense()) + self._fill

    def recommend(self, customers: pd.Index | None = None, n: int = 10, chunk: int = 5_000) -> pd.DataFrame:
        return _recommend(self, self.score, customers, n, chunk)

    def because(self, recs: pd.DataFrame) -> pd.Series:
        """For each recommendation, the owned product that contributes most to it (the "bought X" of the reason)."""
        ci, pi = _positions(self, recs)
        out = []
        sim_t = self.similarity_.T.tocsr()
        for c, p in zip(ci, pi):  # one sparse row pair per shown recommendation (cards only)
            contrib = self.history_[c].multiply(sim_t[p])
            out.append(self.products_[contrib.indices[np.argmax(contrib.data)]] if contrib.nnz else None)
        return pd.Series(out, index=recs.index, dtype=object)


class EASERecommender:
    """EASE: a closed-form linear item-to-item model (Steck, "Embarrassingly Shallow Autoencoders", WWW 2019).

    Learns the item x item weights ``B`` minimising ``||X - X B||² + λ||B||²`` with ``diag(B) = 0``,
    solved exactly by one matrix inverse: ``P = (XᵀX + λI)⁻¹``, ``B = -P / diag(P)``. Chosen over
    BM25 and cosine item-item because it wins the time-split evaluation on Online Retail (hit@10
    0.53 vs 0.49 and 0.46; popularity 0.33). Only the ``max_products`` most-bought products are
    modelled, which bounds memory (a dense ``max_products``² matrix) and time.

    Parameters
    ----------
    l2 : λ, the ridge penalty (larger: closer to popularity, smaller: more niche).
    max_products : products modelled (most bought first).

    Examples
    --------
    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"], "product_id": ["bread", "butter", "bread", "butter", "bread"]})
    >>> EASERecommender(l2=1.0).fit(tx).recommend(pd.Index(["c"]), n=1)["product_id"].tolist()
    ['butter']
    """

    def __init__(self, l2: float = 500.0, max_products: int = 8_000):
        self.l2 = l2
        self.max_products = max_products

    def fit(self, transactions: pd.DataFrame) -> EASERecommender:
        owned, self.customers_, all_products = _interactions(transactions)
        owned.data[:] = 1.0
        popularity = np.asarray(owned.sum(axis=0)).ravel()
        keep = np.sort(np.argsort(-popularity, kind="stable")[: self.max_products])
        self.owned_ = owned[:, keep].tocsr()
        self.products_ = all_products[keep]
        self.popularity_ = popularity[keep]
        gram = (self.owned_.T @ self.owned_).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        inverse = np.linalg.inv(gram)
        weights = -inverse / np.diag(inverse)
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights_ = weights.astype(np.float32)
        self._fill = (self.popularity_ / max(self.popularity_.max(), 1) * 1e-6).astype(np.float32)
        return self

    def score(self, idx: np.ndarray) -> np.ndarray:
        """Dense scores (clients ``idx`` x modelled products)."""
        return np.asarray(self.owned_[idx].astype(np.float32) @ self.weights_) + self._fill

    def recommend(self, customers: pd.Index | None = None, n: int = 10, chunk: int = 5_000) -> pd.DataFrame:
        return _recommend(self, self.score, customers, n, chunk)

    def because(self, recs: pd.DataFrame) -> pd.Series:
        """For each recommendation, the owned product that weighs most towards it (the "bought X" of the reason)."""
        ci, pi = _positions(self, recs)
        out = []
        for c, p in zip(ci, pi):  # one short row per shown recommendation (cards and exports only)
            bought = self.owned_[c].indices if c >= 0 else np.array([], dtype=int)
            if p < 0 or not len(bought):
                out.append(None)
                continue
            contrib = self.weights_[bought, p]
            out.append(self.products_[bought[np.argmax(contrib)]] if contrib.max() > 0 else None)
        return pd.Series(out, index=recs.index, dtype=object)


#: The project's recommender by name (``params.30_clienteling.recommender``).
RECOMMENDERS = {"ease": EASERecommender, "item_knn": ItemKNNRecommender}


def time_split(transactions: pd.DataFrame, split: str | pd.Timestamp | None = None, holdout_fraction: float = 0.25) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Train on purchases before ``split``, test on purchases from it on.

    Without ``split`` the last ``holdout_fraction`` of the period (in days) is held out.
    """
    dates = _dates(transactions)
    if dates is None:
        raise ValueError("recommendation evaluation: transactions need a 'timestamp' column (map it under columns.transactions.timestamp).")
    if split is None or split == "":
        start, end = dates.min(), dates.max()
        cut = start + (end - start) * (1.0 - holdout_fraction)
    else:
        cut = pd.Timestamp(split)
    if not (dates.min() < cut <= dates.max()):
        raise ValueError(f"recommendation split {cut.date()} is outside the data ({dates.min().date()} to {dates.max().date()}); "
                         "set params.30_clienteling.evaluation_split in the run config to a date inside that range, or leave it empty.")
    before = (dates < cut).to_numpy()
    return transactions[before], transactions[~before], cut


@dataclass
class EvaluationResult:
    """Scores per recommender (``table``) and the split they were measured on."""

    table: pd.DataFrame
    split: pd.Timestamp
    k: int
    n_test_clients: int

    def manifest(self, method: str = "ease") -> dict[str, Any]:
        """``models.recommendations`` in the manifest."""
        t = self.table.set_index("recommender")
        entry = {
            "method": method,
            "split": str(self.split.date()),
            "k": self.k,
            "test_clients": int(self.n_test_clients),
            f"hit_at_{self.k}": float(t.loc[method, "hit_rate"]),
            f"recall_at_{self.k}": float(t.loc[method, "recall"]),
            f"coverage_at_{self.k}": float(t.loc[method, "coverage"]),
            f"popularity_hit_at_{self.k}": float(t.loc["popularity", "hit_rate"]),
        }
        if "segment_popularity" in t.index:
            entry[f"segment_popularity_hit_at_{self.k}"] = float(t.loc["segment_popularity", "hit_rate"])
        entry["lift_over_popularity"] = entry[f"hit_at_{self.k}"] / max(entry[f"popularity_hit_at_{self.k}"], 1e-12)
        return entry


def evaluate_recommenders(transactions: pd.DataFrame, recommenders: dict[str, Any], split: str | pd.Timestamp | None = None,
                          k: int = 10, holdout_fraction: float = 0.25) -> EvaluationResult:
    """Hit rate@k, recall@k and catalogue coverage of each recommender on a time split.

    Test clients are those who bought before the split and bought at least one *new* product
    after it; the truth is the set of those new products. Each recommender is fitted on the
    training part only.
    """
    train, test, cut = time_split(transactions, split, holdout_fraction)
    seen = set(zip(train["customer_id"].astype(str), train["product_id"].astype(str)))
    known = set(train["customer_id"].astype(str))
    pairs = test[["customer_id", "product_id"]].astype(str).drop_duplicates()
    pairs = pairs[pairs["customer_id"].isin(known)]
    pairs = pairs[[(c, p) not in seen for c, p in zip(pairs["customer_id"], pairs["product_id"])]]
    truth_size = pairs.groupby("customer_id").size()
    clients = pd.Index(truth_size.index)
    n_products = train["product_id"].nunique()
    rows = []
    for name, model in recommenders.items():  # a handful of recommenders, each scored in one pass
        recs = model.fit(train).recommend(clients, n=k)[["customer_id", "product_id"]].astype(str)
        hits = recs.merge(pairs, on=["customer_id", "product_id"]).groupby("customer_id").size().reindex(clients, fill_value=0)
        rows.append({"recommender": name, "hit_rate": float((hits > 0).mean()), "recall": float((hits / truth_size).mean()),
                     "coverage": recs["product_id"].nunique() / max(n_products, 1), "clients": len(clients)})
    return EvaluationResult(pd.DataFrame(rows), cut, k, len(clients))
