"""feed: posts, hashtags, likes, comments, shares, feed items and scores."""
