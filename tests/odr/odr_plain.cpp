// Compiled with no -m flags.
#include "odr_tu_body.inc"
TranslationUnitReport report_from_plain_tu() { return make_report(); }
