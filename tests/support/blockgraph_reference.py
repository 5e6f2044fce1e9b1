"""The slow obvious BlockGraph: docs/design.md ("BlockGraph", "Finality", "Head") read literally, with dicts, sets and parent walks.

Every view is recomputed from scratch for every epoch, weights are Python ints, and the quorum
test is ``weight * 10000 >= total * bps`` on Python ints. The decisions documented in
engine/consensus/blockgraph.py (pinned genesis, BFS resolution of hash reuse, waiting votes) are
implemented here the plain way, so the fast kernels can be compared against it on every result.
"""
from __future__ import annotations

ZERO = bytes(32)


def resolve_blocks(messages, genesis):
    """messages: iterable of (hash, parent, height or -1). Returns (status by message, tree).

    tree: hash -> (parent or None, height).
    """
    msgs = set(messages)
    status = {}
    tree = {}
    for m in msgs:
        h, p, ht = m
        if h == ZERO:
            status[m] = "zero_hash"
        elif p == ZERO:
            if h != genesis:
                status[m] = "second_genesis"
            elif ht in (-1, 0):
                status[m] = "accepted"
                tree[h] = (None, 0)
            else:
                status[m] = "wrong_height"
    frontier = {genesis} if genesis in tree else set()
    level = 0
    while frontier:
        level += 1
        cands = {}
        for m in msgs:
            h, p, ht = m
            if m in status or p not in frontier:
                continue
            if h in tree:
                status[m] = "duplicate_hash"
            elif ht not in (-1, level):
                status[m] = "wrong_height"
            else:
                cands.setdefault(h, []).append(m)
        for h, ms in cands.items():
            winner = min(p for _, p, _ in ms)
            tree[h] = (winner, level)
            for m in ms:
                status[m] = "accepted" if m[1] == winner else "duplicate_hash"
        frontier = set(cands)
    for m in msgs:
        if m not in status:
            status[m] = "duplicate_hash" if m[0] in tree else "pending"
    return status, tree


def ancestors_or_self(tree, b):
    out = []
    while b is not None:
        out.append(b)
        b = tree[b][0]
    return out


def run(weights, bps, genesis, blocks, votes):
    """Compute every BlockGraph result from the message sets.

    blocks: (hash, parent, height|-1) tuples; votes: (validator, epoch, target, id) tuples.
    """
    status, tree = resolve_blocks(blocks, genesis)
    nval = len(weights)
    valid = set()
    rejected_votes = set()
    for v, e, t, i in set(votes):
        if not (0 <= v < nval):
            rejected_votes.add((v, e, t, "unknown_validator"))
        elif e < 0:
            rejected_votes.add((v, e, t, "epoch_out_of_range"))
        else:
            valid.add((v, e, t, i))
    targets = {}
    for v, e, t, _ in valid:
        targets.setdefault((v, e), set()).add(t)
    excl = {}
    evidence = []
    for (v, e), ts in sorted(targets.items()):
        if len(ts) > 1:
            excl[v] = min(excl.get(v, e), e)
            a, b = sorted(ts)[:2]
            ida = min(i for vv, ee, tt, i in valid if (vv, ee, tt) == (v, e, a))
            idb = min(i for vv, ee, tt, i in valid if (vv, ee, tt) == (v, e, b))
            evidence.append((v, e, a, b, ida, idb))

    def view(E):
        total = sum(weights[v] for v in range(nval) if excl.get(v, E + 1) > E)
        weight = {b: 0 for b in tree}
        for v in range(nval):
            if excl.get(v, E + 1) <= E:
                continue
            mine = [(e, t) for (vv, e), ts in targets.items() if vv == v and e <= E
                    for t in ts if t in tree]
            if not mine:
                continue
            _, t = max(mine)
            for b in ancestors_or_self(tree, t):
                weight[b] += weights[v]
        return total, weight

    finalized = {genesis: None} if genesis in tree else {}
    tip = genesis if genesis in tree else None
    faults = []
    epochs = sorted({e for _, e, _, _ in valid})
    for E in epochs:
        if tip is None:
            break
        total, weight = view(E)
        if total == 0:
            continue
        qual = [b for b in tree if weight[b] * 10000 >= total * bps]
        if not qual:
            continue
        cand = max(qual, key=lambda b: tree[b][1])
        path = ancestors_or_self(tree, cand)
        assert all(q in path for q in qual), "qualifying blocks must form a path"
        if tip in path and cand != tip:
            for b in path[: path.index(tip)]:
                finalized[b] = E
            tip = cand
        elif cand in ancestors_or_self(tree, tip):
            pass
        else:
            faults.append((E, cand, tip))
    total, weight = view(epochs[-1]) if epochs else (0, {b: 0 for b in tree})
    head = tip
    while head is not None:
        kids = [b for b in tree if tree[b][0] == head]
        if not kids:
            break
        head = max(kids, key=lambda b: (weight[b], b))
    orphan_votes = {(v, e, t) for (v, e), ts in targets.items() if len(ts) == 1
                    for t in ts if t not in tree}
    return {
        "head": head,
        "tip": tip,
        "weights": weight,
        "finalized": finalized,
        "equivocators": sorted(excl),
        "exclusion": dict(excl),
        "evidence": evidence,
        "faults": faults,
        "rejected_blocks": {m + (s,) for m, s in status.items()
                            if s not in ("accepted", "pending")},
        "orphan_blocks": {m for m, s in status.items() if s == "pending"},
        "orphan_votes": orphan_votes,
        "rejected_votes": rejected_votes,
    }


def observe(g):
    """Every result of an engine BlockGraph in the reference's shape (and scalar == columnar)."""
    hashes = [r.tobytes() for r in g.block_hashes()]
    weights = dict(zip(hashes, (int(w) for w in g.block_weights())))
    finalized = {h: (None if e < 0 else int(e))
                 for h, f, e in zip(hashes, g.finalized_flags(), g.finalized_at_epochs()) if f}
    for h in hashes:
        assert g.weight(h) == weights[h]
        assert g.is_finalized(h) == (h in finalized)
        assert g.finalized_at(h) == finalized.get(h)
    if hashes:
        many = g.is_finalized_many(g.block_hashes())
        assert [bool(x) for x in many] == [h in finalized for h in hashes]
    excl = g.exclusion_epochs()
    rb = g.rejected_blocks()
    ob = g.orphan_blocks()
    ov = g.orphan_votes()
    rv = g.rejected_votes()
    return {
        "head": g.head(),
        "tip": g.finalized_tip(),
        "weights": weights,
        "finalized": finalized,
        "equivocators": [int(v) for v in g.equivocators()],
        "exclusion": {int(v): int(e) for v, e in enumerate(excl) if e >= 0},
        "evidence": [(e.validator, e.epoch, e.target_a, e.target_b, e.id_a, e.id_b)
                     for e in g.equivocation_evidence()],
        "faults": [(f.epoch, f.candidate, f.finalized_tip) for f in g.safety_faults()],
        "rejected_blocks": {(h.tobytes(), p.tobytes(), int(t), r) for h, p, t, r in
                            zip(rb["hash"], rb["parent"], rb["height"], rb["reason"])},
        "orphan_blocks": {(h.tobytes(), p.tobytes(), int(t)) for h, p, t in
                          zip(ob["hash"], ob["parent"], ob["height"])},
        "orphan_votes": {(int(v), int(e), t.tobytes()) for v, e, t in
                         zip(ov["validator"], ov["epoch"], ov["target"])},
        "rejected_votes": {(int(v), int(e), t.tobytes(), r) for v, e, t, r in
                           zip(rv["validator"], rv["epoch"], rv["target"], rv["reason"])},
    }
