"""The readers' portal: web OPAC (basic, advanced and browse search over each catalogue, record
pages with holdings), My Library (我的图书馆: card, loans, holds, arrived holds, fees, ILL
requests) and the ILL request form, server-rendered over the one engine (issue 15)."""
