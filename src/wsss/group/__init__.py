"""Group-WSSS: group-wise semantic mining with a GNN over groups of images (SPEC section 5).

Li et al., "Group-Wise Semantic Mining for Weakly Supervised Semantic Segmentation", AAAI 2021.
Each differentiable piece is a function plus a Module, batch-first over groups ``(B, K, ...)``:

=====================  ===============================================  ============
module                 what                                             paper
=====================  ===============================================  ============
``adjacency``          edges between images sharing a class + self      Problem def.
``coattention``        low-rank co-attention edges, row-softmax msgs    eqs. 5, 7
``self_attention``     self-edge self-attention with residual           eq. 6
``messages``           sum of the messages of a node                    eq. 8
``conv_gru``           ConvGRU node update                              eq. 2
``dropout``            graph dropout                                    eqs. 10-11
``readout``            1x1 class convolution + GAP                      eq. 9
``gnn``                T rounds of message passing                      Fig. 2
``model``              backbone + GNN + two readouts, loss, CAMs        eq. 12
``sampler``            greedy mini-batch sampling of K images, and      Training
                       the inference groups covering every image once
``train``              training on a dataset (not imported here)        Training
``infer``              group CAM files of a split (not imported here)   Table 3
``saliency``           saliency maps as the CAMs' background            Pseudo GT
=====================  ===============================================  ============
"""

from wsss.group.adjacency import label_adjacency, neighbour_mask
from wsss.group.coattention import (
    CoAttention,
    coattention_edges,
    edge_attention,
    row_softmax_messages,
)
from wsss.group.conv_gru import ConvGRUCell, conv_gru_cell
from wsss.group.dropout import GraphDropout, graph_dropout
from wsss.group.gnn import GroupGNN
from wsss.group.messages import message_sum
from wsss.group.model import GroupCams, GroupClassifier, GroupLogits, ensemble_cams, group_loss
from wsss.group.readout import Readout, readout_logits
from wsss.group.sampler import GreedyGroupSampler, InferenceGroup, greedy_groups, inference_groups
from wsss.group.self_attention import SelfEdge, self_edge_attention

__all__ = [
    "CoAttention",
    "ConvGRUCell",
    "GraphDropout",
    "GreedyGroupSampler",
    "GroupCams",
    "GroupClassifier",
    "GroupGNN",
    "GroupLogits",
    "InferenceGroup",
    "Readout",
    "SelfEdge",
    "coattention_edges",
    "conv_gru_cell",
    "edge_attention",
    "ensemble_cams",
    "graph_dropout",
    "greedy_groups",
    "group_loss",
    "inference_groups",
    "label_adjacency",
    "message_sum",
    "neighbour_mask",
    "readout_logits",
    "row_softmax_messages",
    "self_edge_attention",
]
