"""graph: follows, blocks, mutes and follower counts."""
