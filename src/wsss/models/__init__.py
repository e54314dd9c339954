"""Networks: backbones by name and the CAM classifier."""

from wsss.models.backbones import BACKBONES, Backbone, create_backbone
from wsss.models.cam_net import CamNet, multilabel_loss

__all__ = ["BACKBONES", "Backbone", "CamNet", "create_backbone", "multilabel_loss"]
