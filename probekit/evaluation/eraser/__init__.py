"""ERASER (DeYoung et al. 2020): comprehensiveness, sufficiency and AOPC (§4) and the plausibility metrics against human
rationales (§3) for any attribution method."""
