"""The second phase's rollout: PromQL that compares a candidate with the stable version (shared by
the rendered AnalysisTemplate and `canary status`), verdicts, and the shadow report from captures."""
