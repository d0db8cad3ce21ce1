# ruff: noqa: RUF001 - non-Latin letters that look like Latin ones are the point of these lists
"""Small name lists for the synthetic workspace, in many scripts, so the client meets real-world text.

An entry is ``"Native"`` or ``"Native|latin"``: the second part is the e-mail spelling of names in scripts
that ASCII folding cannot handle (Greek, Cyrillic, CJK, Arabic). Some entries carry quotes, apostrophes and
hyphens on purpose, to exercise CSV quoting and e-mail derivation.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Culture:
    """Given and family names of one language; ``family_first`` names are written family name first."""

    weight: int
    given: tuple[str, ...]
    family: tuple[str, ...]
    family_first: bool = False


def _t(text: str) -> tuple[str, ...]:
    return tuple(text.split(";"))


CULTURES: tuple[Culture, ...] = (
    Culture(  # German
        24,
        _t("Jürgen;Björn;Käthe;Lena;Maximilian;Sophie;Lukas;Anna;Jörg;Ursula;Felix;Hannah;Günther;Marie"),
        _t("Müller;Schröder;Weiß;Groß;Becker;Hoffmann;Schäfer;Krüger;Wagner;Fischer;Köhler;Löwe;Meyer-Lübke"),
    ),
    Culture(  # French
        10,
        _t("Élodie;François;Hélène;Loïc;Chloé;Mathéo;Anaïs;Jérôme;Camille;Noémie;Gaël;Léa"),
        _t("Dubois;Lefèvre;Girard;Bérard;Moreau;Fournier;Rousseau;Mercier;Lemaître;Faure;d'Aubigné;Benoît"),
    ),
    Culture(  # Polish
        8,
        _t("Łukasz;Małgorzata;Wojciech;Zofia;Grzegorz;Agnieszka;Paweł;Katarzyna;Michał;Józef;Barbara"),
        _t("Wiśniewski;Wójcik;Kowalczyk;Zieliński;Szymański;Woźniak;Dąbrowski;Kozłowski;Jankowski;Nowak"),
    ),
    Culture(  # Turkish
        7,
        _t("Çağla;Gökhan;Şule;Ömer;İbrahim;Ayşe;Emre;Özlem;Burak;Gülşen;Mehmet;Zeynep"),
        _t("Yılmaz;Öztürk;Çelik;Şahin;Doğan;Aydın;Kılıç;Arslan;Koç;Kaya;Güneş;Erdoğan"),
    ),
    Culture(  # English, with a nickname in quotes and an apostrophe
        10,
        _t('James;Olivia;Liam;Emma;Noah;Ava;Mary-Kate;Robert "Bob";Siobhan;Oliver'),
        _t("Smith;O'Connor;Taylor;Brown;Smith-Jones;Walker;Wright;Evans;Robinson;Clarke"),
    ),
    Culture(  # Spanish
        6,
        _t("José;María José;Ángel;Lucía;Álvaro;Begoña;Iñigo;Nuria"),
        _t("García;Martínez;Fernández;Núñez;Ibáñez;Peña;Muñoz;Gómez de la Serna"),
    ),
    Culture(  # Czech
        4,
        _t("Jiří;Tereza;Tomáš;Kateřina;Ondřej;Markéta"),
        _t("Dvořák;Novotná;Černý;Procházka;Kučera;Růžička"),
    ),
    Culture(  # Scandinavian
        4,
        _t("Åsa;Søren;Björn;Ingrid;Øystein;Linnéa"),
        _t("Ødegård;Lindqvist;Sjöberg;Åberg;Jørgensen;Nyström"),
    ),
    Culture(  # Greek
        4,
        _t("Γιώργος|giorgos;Μαρία|maria;Νίκος|nikos;Ελένη|eleni;Δημήτρης|dimitris;Κατερίνα|katerina"),
        _t("Παπαδόπουλος|papadopoulos;Οικονόμου|oikonomou;Γεωργίου|georgiou;Νικολάου|nikolaou"),
    ),
    Culture(  # Russian
        4,
        _t("Дмитрий|dmitry;Анна|anna;Сергей|sergey;Екатерина|ekaterina;Алексей|alexey;Ольга|olga"),
        _t("Иванов|ivanov;Смирнова|smirnova;Кузнецов|kuznetsov;Попова|popova;Соколов|sokolov"),
    ),
    Culture(  # Ukrainian
        3,
        _t("Олександр|oleksandr;Оксана|oksana;Тарас|taras;Ірина|iryna"),
        _t("Шевченко|shevchenko;Коваленко|kovalenko;Бондаренко|bondarenko;Ткаченко|tkachenko"),
    ),
    Culture(  # Japanese
        4,
        _t("陽翔|haruto;結衣|yui;蓮|ren;さくら|sakura;大輝|daiki;美咲|misaki"),
        _t("佐藤|sato;鈴木|suzuki;高橋|takahashi;田中|tanaka;伊藤|ito;渡辺|watanabe"),
        family_first=True,
    ),
    Culture(  # Chinese
        4,
        _t("伟|wei;芳|fang;静|jing;磊|lei;秀英|xiuying;浩然|haoran"),
        _t("王|wang;李|li;张|zhang;刘|liu;陈|chen;杨|yang"),
        family_first=True,
    ),
    Culture(  # Korean
        2,
        _t("민준|minjun;서연|seoyeon;지훈|jihoon;하은|haeun"),
        _t("김|kim;이|lee;박|park;최|choi"),
        family_first=True,
    ),
    Culture(  # Arabic
        4,
        _t("محمد|mohammed;فاطمة|fatima;أحمد|ahmed;ليلى|layla;يوسف|youssef;مريم|maryam"),
        _t("العلي|alali;حداد|haddad;منصور|mansour;الخطيب|alkhatib;عبدالله|abdullah;سعيد|saeed"),
    ),
    Culture(  # Vietnamese
        2,
        _t("Minh;Hương;Đức;Thảo;Quang;Linh"),
        _t("Nguyễn;Trần;Lê;Phạm;Hoàng;Đặng"),
        family_first=True,
    ),
)

# (name, weight); departments of exactly 1 to 4 people are added separately (SMALL_DEPARTMENTS).
DEPARTMENTS: tuple[tuple[str, int], ...] = (
    ("Engineering", 18),
    ("Sales", 12),
    ("Customer Support", 12),
    ("Marketing", 8),
    ("Operations", 8),
    ("Research & Development", 8),
    ("Finance", 6),
    ("Product", 6),
    ("Human Resources", 5),
    ("IT", 5),
    ("Legal", 3),
    ("Procurement", 3),
    ("Qualitätssicherung", 3),
    ("Logistique", 3),
)
SMALL_DEPARTMENTS: tuple[tuple[str, int], ...] = (
    ("Datenschutz", 1),
    ("Internal Audit", 2),
    ("Works Council", 3),
    ("Executive Office", 4),
)

COMPANIES: tuple[tuple[str, int], ...] = (
    ("Nordlicht Industries GmbH", 60),
    ("Nordlicht France SAS", 12),
    ("Nordlicht Polska Sp. z o.o.", 10),
    ("Nordlicht Teknoloji A.Ş.", 8),
    ("Nordlicht Consulting, Inc.", 10),
)
EMAIL_DOMAIN = "nordlicht.example"

AGENT_TOPICS: tuple[str, ...] = _t(
    "Vertragsprüfer;Rédacteur juridique;Asystent HR;Müşteri Destek Botu;Βοηθός Πωλήσεων;"
    "Помощник по закупкам;翻訳アシスタント;会议纪要助手;مساعد الموارد البشرية;Code Reviewer;"
    "Onboarding Buddy;Résumé des réunions;Angebotsgenerator;Data Analyst;Release Notes Writer;"
    'IT Helpdesk;Marketing "Copy" Coach;Travel Expenses, Reisekosten;Policy Q&A;SQL Helper'
)
PROJECT_TOPICS: tuple[str, ...] = _t(
    "Website-Relaunch;Q3 Forecast;Migration to Cloud;Projet Lumière;Audyt bezpieczeństwa;Yeni Ofis;"
    "Ausschreibung Stadtwerke;Customer Churn Study;Каталог 2026;新製品ローンチ;Annual Report;Tender, Phase II"
)
API_KEY_NAMES: tuple[str, ...] = _t(
    "CI pipeline;Intranet bot;Zapier sync;Ticket triage;Data warehouse loader;Slack app;Nightly reports"
)

_SPECIAL_FOLDS = str.maketrans(
    {
        "ß": "ss",
        "ł": "l",
        "Ł": "L",
        "ø": "o",
        "Ø": "O",
        "æ": "ae",
        "Æ": "AE",
        "đ": "d",
        "Đ": "D",
        "ı": "i",
        "œ": "oe",
        "Œ": "OE",
    }
)


def email_part(name: str) -> str:
    """The ASCII e-mail spelling of a name entry: its latin part, or the name folded to ASCII letters."""
    native, _, latin = name.partition("|")
    text = latin or native
    folded = unicodedata.normalize("NFKD", text.translate(_SPECIAL_FOLDS))
    kept = "".join(ch for ch in folded.lower() if ch.isascii() and (ch.isalnum() or ch in "-."))
    return kept.strip("-.") or "user"


def display(name: str) -> str:
    """The name as written in its own script."""
    return name.partition("|")[0]
