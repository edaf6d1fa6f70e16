"""Product groups from titles alone: the same text, or a rare shared model number."""

from __future__ import annotations

from taxonomist.product_groups import model_numbers, product_groups


def test_model_numbers_are_long_tokens_of_letters_and_digits():
    assert model_numbers("Bosch SMS46KI01G dishwasher, 60cm, 2023") == {"sms46ki01g"}
    assert model_numbers("Samsung Galaxy S9 64GB") == set()  # too short to name one product


def test_titles_join_by_text_or_a_rare_model_number():
    titles = [
        "Bosch SMS46KI01G dishwasher",
        "BOSCH sms46ki01g Serie 4 freestanding",
        "Miele G5000 SC",
        "miele g5000 sc ",  # the same text
        "Apple iPhone",
    ]
    groups = product_groups(titles)
    assert groups[0] == groups[1] and groups[2] == groups[3]
    assert len(set(groups.tolist())) == 3


def test_a_common_token_joins_nothing():
    titles = [f"phone {i} abc64gb" for i in range(5)]
    assert len(set(product_groups(titles, max_titles=4).tolist())) == 5
    assert len(set(product_groups(titles, max_titles=5).tolist())) == 1
