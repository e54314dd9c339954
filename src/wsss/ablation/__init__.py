"""Ablation tables in the layout of the papers' tables, on the pseudo-label split of a run."""

from wsss.ablation.gcn import GCN_VARIANTS, ablate_gcn, gcn_table

__all__ = ["GCN_VARIANTS", "ablate_gcn", "gcn_table"]
