//! eks-reaper
