import pytest


@pytest.mark.django_db
def test_unknown_api_route_answers_the_error_envelope_not_html(api_client):
    response = api_client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"
