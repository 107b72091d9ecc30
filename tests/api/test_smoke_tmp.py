from .builders import create_farm, get_farm, farm_detail

def test_x(client):
    create_farm(client)
    assert get_farm(client) == farm_detail()
