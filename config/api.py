"""The JSON API at /api/v1: one NinjaAPI, one router per app, domain errors rendered as JSON."""

from ninja import NinjaAPI

from config.errors import DomainError, RateLimited

api = NinjaAPI(title="SignalSmith Organizations API", version="1", urls_namespace="api")


@api.exception_handler(DomainError)
def domain_error(request, exc: DomainError):
    response = api.create_response(request, {"error": exc.as_dict()}, status=exc.status)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    return response
