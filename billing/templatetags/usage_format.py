"""Template filters for usage figures: {{ n|human_count }}, {{ n|human_bytes }}, {{ r|percent }}."""

from django import template

from billing import charts

register = template.Library()

register.filter("human_count", charts.human_count)
register.filter("human_bytes", charts.human_bytes)
register.filter("percent", charts.percent)
