"""Field limits of reviews and the listing search, defined once.

The models (fields and check constraints), forms, serializers, filters, services and the
legacy importer read them from here; the listing's own limits (price, currency, name, tags)
are beside the Project model in projects/models.py and projects/validation.py.
"""

RATING_MIN = 1
RATING_MAX = 5
REVIEW_TITLE_MAX_LENGTH = 120
REVIEW_BODY_MAX_LENGTH = 5_000
SEARCH_MAX_LENGTH = 200
# The listing form's tags box: the tags (projects.validation.MAX_TAGS of at most MAX_TAG_LENGTH)
# written out with commas and spaces, with room to spare.
TAGS_TEXT_MAX_LENGTH = 400
