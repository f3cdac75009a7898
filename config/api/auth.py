"""Register, token, logout and me. Tokens are knox tokens: stored hashed, expiring."""

from django.contrib.auth import authenticate, get_user_model
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import user_create, user_logout_everywhere, user_password_change
from config.api.exceptions import error_response
from config.api.throttling import AuthAddressThrottle, AuthUsernameThrottle, SignupThrottle
from config.auth_backends import login_retry_after

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ("id", "username", "email")
        read_only_fields = fields


class MeSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ("id", "username", "email", "is_staff")
        read_only_fields = fields


class RegisterSerializer(serializers.Serializer):
    """Shapes only; the account rules are accounts.services.user_create's."""

    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expiry = serializers.DateTimeField(allow_null=True)


class RegisterView(APIView):
    permission_classes = (AllowAny,)
    authentication_classes = ()
    throttle_classes = (SignupThrottle,)  # shared with the sign-up page

    @extend_schema(
        request=RegisterSerializer,
        responses={
            201: inline_serializer(
                "Registered", {"user": UserSerializer(), "token": serializers.CharField()}
            )
        },
    )
    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_create(**serializer.validated_data)
        _, token = AuthToken.objects.create(user)
        return Response(
            {"user": UserSerializer(user).data, "token": token}, status=status.HTTP_201_CREATED
        )


def _refuse_if_locked(request) -> None:
    """A login refused by the lock is a 429 with Retry-After, whatever the password, like the
    login page says; never "wrong password"."""
    wait = login_retry_after(request)
    if wait is not None:
        raise Throttled(wait=wait, detail="Too many failed logins for this name from your address.")


class TokenView(APIView):
    permission_classes = (AllowAny,)
    authentication_classes = ()
    throttle_classes = (AuthAddressThrottle, AuthUsernameThrottle)

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenSerializer})
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if user is None:
            _refuse_if_locked(request)
            return error_response(400, "Wrong username or password.", "invalid_credentials")
        AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
        instance, token = AuthToken.objects.create(user)
        return Response({"token": token, "expiry": instance.expiry})


class LogoutView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        if isinstance(request.auth, AuthToken):
            request.auth.delete()
        else:
            from django.contrib.auth import logout

            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutEverywhereView(APIView):
    """Ends every session and API token of the user, the one making this call included."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        user_logout_everywhere(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeSerializer(serializers.Serializer):
    old_password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)


class PasswordChangeView(APIView):
    """Changes the password; the user's other sessions and tokens end, the caller's stays."""

    permission_classes = (IsAuthenticated,)
    throttle_classes = (AuthAddressThrottle,)

    @extend_schema(request=PasswordChangeSerializer, responses={204: None})
    def post(self, request):
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = request.user
        # Through the login lock: a stolen token must not become a way to guess the password.
        checked = authenticate(request, username=user.get_username(), password=data["old_password"])
        if checked is None:
            _refuse_if_locked(request)
            raise serializers.ValidationError(
                {"old_password": ["This is not your current password."]},
                code="wrong_password",
            )
        user_password_change(
            user=user,
            password=data["new_password"],
            request=request,
            keep_token=request.auth if isinstance(request.auth, AuthToken) else None,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(responses={200: MeSerializer})
    def get(self, request):
        return Response(MeSerializer(request.user).data)
