from django.urls import path

from marketplace import views

app_name = "marketplace"

urlpatterns = [
    path("", views.home, name="home"),
    path("listings/<uuid:pk>/", views.listing_detail, name="listing"),
    path("listings/<uuid:pk>/buy/", views.listing_buy, name="buy"),
    path("listings/<uuid:pk>/download/", views.download_start, name="download"),
    path("listings/<uuid:pk>/review/", views.review_edit, name="review"),
    path("listings/<uuid:pk>/review/delete/", views.review_delete, name="review_delete"),
    path("projects/<uuid:pk>/listing/", views.listing_edit, name="listing_edit"),
    path("projects/<uuid:pk>/listing/unpublish/", views.listing_unpublish, name="unpublish"),
    path("purchases/", views.purchase_list, name="purchases"),
    path("downloads/", views.download_list, name="downloads"),
    path("downloads/<str:token>/", views.download_file, name="download_file"),
    path("sales/", views.sales, name="sales"),
]
