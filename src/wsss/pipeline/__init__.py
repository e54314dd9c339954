"""The main job: every stage of the pipeline driven by one configuration, in a run directory."""
