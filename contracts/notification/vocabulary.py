"""Realistic values for generated payloads: carriers, sites, places. Data, not logic.

Carrier codes are the published ones; tracking-number shapes and URLs are each carrier's public
format (close enough for a receiver's parser, never real parcels).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Carrier:
    code: str
    tracking_pattern: str  # faker bothify pattern: '#' digit, '?' letter
    tracking_url: str  # '{n}' is the tracking number
    country: str


CARRIERS: tuple[Carrier, ...] = (
    Carrier("fedex", "############", "https://www.fedex.com/track?trk={n}", "United States"),
    Carrier("ups", "1Z###########?####", "https://www.ups.com/track?tracknum={n}", "United States"),
    Carrier("dhl", "##########", "https://www.dhl.com/global-en/home/tracking.html?tracking-id={n}", "Germany"),
    Carrier("dhl-global-mail", "GM################", "https://webtrack.dhlglobalmail.com/?trackingnumber={n}", "Germany"),
    Carrier("deutsch-post", "RR#########DE", "https://www.deutschepost.de/sendung/simpleQuery.html?form.sendungsnummer={n}", "Germany"),
    Carrier("usps-iv-api", "9400############", "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}", "United States"),
    Carrier("chronopost-france", "XY#########FR", "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT={n}", "France"),
    Carrier("la-poste-colissimo", "6A###########", "https://www.laposte.fr/outils/suivre-vos-envois?code={n}", "France"),
    Carrier("estafeta", "######################", "https://www.estafeta.com/Herramientas/Rastreo?guia={n}", "Mexico"),
    Carrier("nacex", "########", "https://www.nacex.es/seguimientoDetalle.do?expedicion={n}", "Spain"),
    Carrier("spanish-seur", "##############", "https://www.seur.com/livetracking/?segOnlineIdentificador={n}", "Spain"),
    Carrier("spain-correos-es", "PQ##?###########", "https://www.correos.es/es/es/herramientas/localizador/envios/detalle?tracking-number={n}", "Spain"),
    Carrier("singapore-post", "RR#########SG", "https://www.singpost.com/track-items?trackingid={n}", "Singapore"),
)

# Real personalization-centre towns and real (city, country) pairs for checkpoints.
PRODUCTION_SITES: tuple[str, ...] = ("Gemenos", "Tczew", "Pont-Audemer", "Curitiba", "Singapore", "Toluca", "Chicago")

CHECKPOINT_PLACES: dict[str, tuple[str, ...]] = {
    "France": ("Paris", "Lyon", "Marseille", "Roissy-en-France", "Toulouse", "Lille"),
    "Germany": ("Leipzig", "Frankfurt", "Cologne", "Hamburg", "Munich"),
    "United States": ("Memphis", "Louisville", "Indianapolis", "Newark", "Chicago"),
    "Spain": ("Madrid", "Barcelona", "Valencia", "Zaragoza"),
    "Mexico": ("Mexico City", "Guadalajara", "Monterrey", "Toluca"),
    "Singapore": ("Singapore",),
}

# Carrier statuses in the order a parcel goes through them (d1sim's open vocabulary).
SHIPMENT_PROGRESS: tuple[tuple[str, str], ...] = (
    ("INFO_RECEIVED", "Shipment information received"),
    ("IN_TRANSIT", "In transit"),
    ("IN_TRANSIT", "Arrived at facility"),
    ("OUT_FOR_DELIVERY", "Out for delivery"),
    ("DELIVERED", "Delivered"),
)

# Fields a DATA_EXCEPTION may name (FIELD_INVALID_FORMAT's `error` is the field).
EXCEPTION_FIELDS: tuple[str, ...] = ("pan", "expiryDate", "cardholderName", "deliveryAddress.zipCode", "embossingLine1")

# Statuses D1 does not send today: used to test forward compatibility.
UNKNOWN_STATUSES: tuple[str, ...] = ("CARD_PROD_QUALITY_CHECK", "CARD_PROD_ON_HOLD", "CARD_RETURNED", "CARD_PACKAGED")
