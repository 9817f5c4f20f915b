"""Comparison models of the paper (PSPNet, DeepLabV3+, Semantic FPN, DenseCLIP), registered beside BEMSeg."""
