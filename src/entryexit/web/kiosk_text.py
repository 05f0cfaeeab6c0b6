"""The kiosk's words, per language. Plain and short: read at a distance, by people in a
queue, some in a language not their own. The privacy notice itself is policy (its text and
version come from the policy in force)."""

from __future__ import annotations

from typing import Final

TEXTS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "language_name": "English",
        "title": "Boarding photo",
        "lane": "Lane",
        "notice_title": "About your photo",
        "start": "Continue to the camera",
        "decline": "I do not want my photo taken",
        "show_notice": "Read about your photo again",
        "look": "Look at the camera.",
        "starting": "Starting the camera…",
        "advice_no_face": "Stand in front of the camera and look at it.",
        "advice_too_far": "Please come closer to the camera.",
        "advice_pose": "Please turn your head to face the camera.",
        "advice_too_dark": "It is too dark. Please step into the light.",
        "advice_too_bright": "There is too much light. Please move a little.",
        "advice_blur": "Please hold still.",
        "advice_more_than_one": "One person at a time, please.",
        "advice_low_confidence": "Please look straight at the camera.",
        "hold_still": "Hold still: taking your photo.",
        "proceed": "Thank you. Please proceed.",
        "see_officer": "Please see the officer.",
        "try_again": "Please try again.",
        "opted_out": (
            "No photo will be taken. Please go to the manual lane:"
            " an officer will check your travel document."
        ),
        "lane_closed": "This lane is not open. Please see the officer.",
        "camera_unavailable": "The camera is not available. Please see the officer.",
        "next": "Next traveler",
        "pairing_title": "This kiosk is not paired",
        "pairing_instructions": (
            "A supervisor enters this code in the console (Kiosks page) with this kiosk's"
            " carrier, port and lane."
        ),
        "pairing_expires": "The code works once, for a few minutes; a new one is then shown.",
    },
    "fr": {
        "language_name": "Français",
        "title": "Photo d'embarquement",
        "lane": "File",
        "notice_title": "À propos de votre photo",
        "start": "Continuer vers la caméra",
        "decline": "Je ne veux pas être photographié",
        "show_notice": "Relire l'information sur votre photo",
        "look": "Regardez la caméra.",
        "starting": "Démarrage de la caméra…",
        "advice_no_face": "Placez-vous devant la caméra et regardez-la.",
        "advice_too_far": "Approchez-vous de la caméra, s'il vous plaît.",
        "advice_pose": "Tournez la tête vers la caméra, s'il vous plaît.",
        "advice_too_dark": "Il fait trop sombre. Avancez vers la lumière.",
        "advice_too_bright": "Il y a trop de lumière. Déplacez-vous un peu.",
        "advice_blur": "Ne bougez plus, s'il vous plaît.",
        "advice_more_than_one": "Une seule personne à la fois, s'il vous plaît.",
        "advice_low_confidence": "Regardez la caméra bien en face.",
        "hold_still": "Ne bougez plus\u00a0: prise de la photo.",
        "proceed": "Merci. Vous pouvez avancer.",
        "see_officer": "Veuillez vous adresser à l'agent.",
        "try_again": "Veuillez réessayer.",
        "opted_out": (
            "Aucune photo ne sera prise. Rendez-vous à la file manuelle\u00a0:"
            " un agent vérifiera votre document de voyage."
        ),
        "lane_closed": "Cette file n'est pas ouverte. Veuillez vous adresser à l'agent.",
        "camera_unavailable": "La caméra n'est pas disponible. Veuillez vous adresser à l'agent.",
        "next": "Voyageur suivant",
        "pairing_title": "Ce kiosque n'est pas appairé",
        "pairing_instructions": (
            "Un superviseur saisit ce code dans la console (page Kiosques) avec la compagnie,"
            " le port et la file de ce kiosque."
        ),
        "pairing_expires": (
            "Le code sert une fois, quelques minutes\u00a0; un nouveau s'affiche ensuite."
        ),
    },
}
