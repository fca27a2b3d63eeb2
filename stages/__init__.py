"""Stages: one module per stage wrapper, pure kernels beside them (kernels import nothing from
`pipeline`). STAGES is the closed registry: `type:` in YAML -> "module:Class"."""

STAGES = {
    "annotate": "stages.annotate:AnnotateStage",
    "planar_track": "stages.planar_track:PlanarTrackStage",
    "background": "stages.background:BackgroundStage",
    "placement": "stages.placement:PlacementStage",
    "detect": "stages.detect:DetectStage",
    "track": "stages.track:TrackStage",
    "motion": "stages.motion:MotionStage",
    "activity": "stages.activity:ActivityStage",
    "events": "stages.events:EventsStage",
    "flow": "stages.flow:FlowStage",
}
