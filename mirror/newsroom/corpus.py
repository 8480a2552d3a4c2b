"""Raw material of the sample newsroom: the `Draft` record and the pools that
generated articles are combined from (all text written for this project)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Draft:
    """One hand-written article before it gets an id, a date and a URL."""

    title: str
    lead: str
    section: str
    topic: str  # a short noun phrase for generated follow-up titles
    authors: tuple[str, ...]
    paragraphs: tuple[str, ...]


ANGLES = {
    "en": (
        "residents demand answers",
        "what changed this week",
        "officials stay silent",
        "the documents we obtained",
        "a second look at the numbers",
        "voices from the neighbourhood",
        "what the experts say",
        "the questions that remain",
    ),
    "ru": (
        "жители требуют ответов",
        "что изменилось за неделю",
        "чиновники молчат",
        "документы, которые оказались у редакции",
        "ещё раз о цифрах",
        "голоса соседей",
        "что говорят эксперты",
        "вопросы, на которые нет ответа",
    ),
}

DISTRICTS = {
    "en": ("Zarechye", "the old town", "Sosnovka", "the railway quarter", "Verkhnee", "Lipovka"),
    "ru": ("Заречье", "Старый город", "Сосновка", "Привокзальный район", "Верхнее", "Липовка"),
}

PEOPLE = {
    "en": (
        ("Olga Markina", "a pensioner", "told"),
        ("Pavel Ryabov", "a history teacher", "told"),
        ("Nadezhda Orlova", "a nurse", "told"),
        ("Kirill Zaitsev", "a shop owner", "told"),
        ("Svetlana Belova", "a parent of two", "told"),
        ("Andrei Kotov", "a retired engineer", "told"),
    ),
    "ru": (
        ("Ольга Маркина", "пенсионерка", "рассказала"),
        ("Павел Рябов", "учитель истории", "рассказал"),
        ("Надежда Орлова", "медсестра", "рассказала"),
        ("Кирилл Зайцев", "владелец магазина", "рассказал"),
        ("Светлана Белова", "мать двоих детей", "рассказала"),
        ("Андрей Котов", "инженер на пенсии", "рассказал"),
    ),
}

CLAIMS = {
    "en": (
        "nobody from the administration had come to see the problem in person",
        "the official figures did not match what neighbours saw every day",
        "letters to the mayor's office had gone unanswered since the summer",
        "the promised repairs had started and stopped twice",
        "people were afraid to complain openly",
        "the same story had been repeated for years",
    ),
    "ru": (
        "никто из администрации так и не приехал посмотреть на проблему своими глазами",
        "официальные цифры не совпадают с тем, что соседи видят каждый день",
        "на письма в мэрию с лета никто не ответил",
        "обещанный ремонт дважды начинали и бросали",
        "люди боятся жаловаться открыто",
        "эта история повторяется уже много лет",
    ),
}

WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
    "ru": ("в понедельник", "во вторник", "в среду", "в четверг", "в пятницу", "в субботу"),
}

UNIQUE_PARAGRAPH = {
    "en": (
        "{name}, {role} from {district}, {verb} the Courier on {weekday} that {claim}. We have "
        "received {count} letters on the subject since the spring; this report is filed "
        "in our archive under reference ZC-{ref:05d}."
    ),
    "ru": (
        "{name}, {role} (район {district}), {weekday} {verb} «Курьеру», что {claim}. "
        "С весны в редакцию пришло {count} писем на эту тему; материал хранится в нашем "
        "архиве под номером ЗК-{ref:05d}."
    ),
}

LEADS = {
    "en": "{topic}: {angle}. The Courier went to {district} to find out more.",
    "ru": "{topic}: {angle}. Корреспонденты «Курьера» побывали в районе {district}.",
}

REVISION_NOTE = {
    "en": (
        "Update {n}: this article was revised after publication to add the response of the "
        "city administration, which arrived after our deadline."
    ),
    "ru": (
        "Обновление {n}: статья дополнена после публикации — ответ администрации города "
        "пришёл в редакцию позже, чем материал вышел."
    ),
}
