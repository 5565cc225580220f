"""Every word the portal shows, in Chinese (the default) and English: one catalogue.

Templates call `_("key", field=value)`. The engine's reasons (why a hold or a renewal was
refused) come with their own two languages (gateway/circulation/reasons.py) and are shown as
the engine words them. Accessible names that tests and screen readers rely on (issue 15) are
the English of the `label_*` and `button_*` keys: keep them exactly.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

# key: (Chinese, English). Templates take {fields}.
MESSAGES: Mapping[str, tuple[str, str]] = {
    # --- every page -------------------------------------------------------------------------
    "site_name": ("图书馆书目检索", "Library catalogue"),
    "skip_to_content": ("跳到正文", "Skip to content"),
    "nav_label": ("主导航", "Main navigation"),
    "nav_search": ("书目检索", "Search"),
    "nav_advanced": ("高级检索", "Advanced search"),
    "nav_browse": ("浏览", "Browse"),
    "nav_my_library": ("我的图书馆", "My Library"),
    "nav_union": ("联合检索", "Union search"),
    "nav_log_in": ("登录", "Log in"),
    "switch_language": ("English", "中文"),
    "switch_language_label": ("Switch to English", "切换到中文"),
    "logged_in_as": ("读者：{name}", "Reader: {name}"),
    "button_log_out": ("退出", "Log out"),
    "footer": (
        "libgate 读者门户 · 书目数据与馆藏状态实时更新",
        "libgate readers' portal · catalogue and copy status are live",
    ),
    # --- search -----------------------------------------------------------------------------
    "catalogues_label": ("书目库", "Catalogues"),
    "label_search_terms": ("检索词", "Search terms"),
    "label_index": ("检索字段", "Search in"),
    "button_search": ("检索", "Search"),
    "search_hint": (
        "输入题名、著者、主题等任意词；用引号检索词组，例如 “明代 政治”。也可输入拼音或假名。",
        'Type any words from a title, author or subject; quote a phrase, e.g. "Ming dynasty".'
        " Pinyin and kana work too.",
    ),
    "index_any": ("任意字段", "Any field"),
    "index_title": ("题名", "Title"),
    "index_author": ("著者", "Author"),
    "index_subject": ("主题词", "Subject"),
    "index_series": ("丛书名", "Series"),
    "index_publisher": ("出版者", "Publisher"),
    "index_isbn": ("ISBN", "ISBN"),
    "index_clc": ("中图分类号", "CLC class"),
    "index_year": ("出版年", "Year"),
    "results_heading": ("检索结果", "Search results"),
    "results_count": ("共 {total} 条结果，第 {first}–{last} 条", "{total} results, {first}–{last}"),
    "results_none": (
        "没有找到符合条件的书目。请换个词试试，或检查错别字。",
        "Nothing was found. Try other words, or check the spelling.",
    ),
    "label_sort": ("排序", "Sort by"),
    "sort_relevance": ("相关度", "Relevance"),
    "sort_title": ("题名", "Title"),
    "sort_author": ("著者", "Author"),
    "sort_date": ("出版年（新→旧）", "Year (newest first)"),
    "sort_date_old": ("出版年（旧→新）", "Year (oldest first)"),
    "label_page_size": ("每页", "Per page"),
    "label_available_only": ("只显示可借的书", "Available copies only"),
    "button_apply": ("应用", "Apply"),
    "pages_label": ("分页", "Pages"),
    "page_previous": ("上一页", "Previous page"),
    "page_next": ("下一页", "Next page"),
    "page_current": ("第 {page} 页，共 {pages} 页", "Page {page} of {pages}"),
    "col_title": ("题名", "Title"),
    "col_author": ("著者", "Author"),
    "col_publisher": ("出版者", "Publisher"),
    "col_year": ("出版年", "Year"),
    "col_availability": ("馆藏状态", "Availability"),
    "availability_available": (
        "{available} 册可借（共 {copies} 册）",
        "{available} of {copies} available",
    ),
    "availability_on_loan": ("已全部借出，最早 {due} 到期", "On loan, due {due}"),
    "availability_on_hold_shelf": ("已被预约保留", "Kept for holds"),
    "availability_library_use_only": ("仅限馆内阅览", "In library use only"),
    "availability_unavailable": ("暂不可借", "Not available"),
    "availability_no_copies": ("无馆藏", "No copies"),
    "availability_queue": ("{count} 人预约中", "{count} waiting"),
    "query_error": (
        "无法按这个检索式检索：{detail}",
        "This search cannot be run: {detail}",
    ),
    "query_error_syntax": (
        "检索式有误。要检索词语，直接输入词语即可；词组请加引号。",
        "The search could not be read. To search for words, type just the words;"
        " put quotes around a phrase.",
    ),
    "query_error_empty": ("请输入检索词。", "Type a word or two to search for."),
    "query_error_too_complex": (
        "检索式太复杂，请减少检索词。",
        "The search is too complex; use fewer words.",
    ),
    # --- advanced search and browse ---------------------------------------------------------
    "advanced_heading": ("高级检索", "Advanced search"),
    "advanced_intro": (
        "在多个字段中组合检索。每行选择一个字段，输入检索词，并选择与上一行的关系。",
        "Combine several fields. Each row has a field and words, and how it joins the row above.",
    ),
    "label_row_field": ("第 {row} 行字段", "Field of row {row}"),
    "label_row_terms": ("第 {row} 行检索词", "Words of row {row}"),
    "label_row_op": ("第 {row} 行与上一行的关系", "How row {row} joins the rows above"),
    "op_and": ("并且 (AND)", "AND"),
    "op_or": ("或者 (OR)", "OR"),
    "op_not": ("不含 (NOT)", "NOT"),
    "label_year_from": ("出版年从", "Year from"),
    "label_year_to": ("到", "Year to"),
    "browse_heading": ("浏览", "Browse"),
    "browse_intro": (
        "按字顺浏览题名、著者、主题词或丛书名。输入开头的字或词，从那里开始列出。",
        "Browse titles, authors, subjects or series in order, from the words you type.",
    ),
    "label_browse_list": ("浏览列表", "List"),
    "label_browse_from": ("从此开始", "Start at"),
    "button_browse": ("浏览", "Browse"),
    "browse_count": ("{count} 种", "{count} titles"),
    "browse_empty": ("这里没有更多条目。", "There are no more entries here."),
    "browse_more": ("继续浏览", "More"),
    # --- record page ------------------------------------------------------------------------
    "record_heading": ("详细书目信息", "Record details"),
    "field_title": ("题名", "Title"),
    "field_responsibility": ("责任者", "Statement of responsibility"),
    "field_edition": ("版本", "Edition"),
    "field_publication": ("出版发行", "Publication"),
    "field_extent": ("载体形态", "Description"),
    "field_series": ("丛书", "Series"),
    "field_subjects": ("主题", "Subjects"),
    "field_clc": ("中图分类号", "CLC number"),
    "field_isbn": ("ISBN", "ISBN"),
    "field_issn": ("ISSN", "ISSN"),
    "field_notes": ("附注", "Notes"),
    "field_summary": ("提要", "Summary"),
    "field_language": ("语种", "Language"),
    "field_record_id": ("记录号", "Record id"),
    "holdings_heading": ("馆藏信息", "Holdings"),
    "holdings_caption": ("本书的馆藏复本及其状态", "Copies of this title and their status"),
    "col_library": ("馆址", "Library"),
    "col_location": ("馆藏地", "Location"),
    "col_call_number": ("索书号", "Call number"),
    "col_status": ("状态", "Status"),
    "col_item_type": ("馆藏类型", "Item type"),
    "col_barcode": ("馆藏条码", "Barcode"),
    "status_due": ("应还日期 {due}", "due {due}"),
    "holdings_none": ("本书暂无馆藏复本。", "There are no copies of this title."),
    "hold_heading": ("预约申请", "Place hold"),
    "button_place_hold": ("预约申请", "Place hold"),
    "hold_login_first": ("预约前请先登录“我的图书馆”。", "Log in to My Library to place a hold."),
    "ill_from_record": ("馆际互借申请", "Request through interlibrary loan"),
    "record_not_found": ("没有找到这条书目。", "This record was not found."),
    # --- holds ------------------------------------------------------------------------------
    "hold_confirm_heading": ("确认预约", "Confirm the hold"),
    "hold_can_place": (
        "该种书已被借出，可以预约。请在“预约框”里挑勾，然后点击“确认预约”。",
        "All copies are out, so you can place a hold. Tick the box, then Confirm hold.",
    ),
    "hold_pickup": ("取书地：{desk}", "Pick up at: {desk}"),
    "hold_pickup_unknown": (
        "取书地：该书馆藏地所在的借书处",
        "Pick up at the desk of the copy's location",
    ),
    "hold_queue_position": (
        "您将排在第 {position} 位",
        "You will be number {position} in the queue",
    ),
    "hold_expiry_note": (
        "预约记录的保留天数为 {days} 天；预约到书后保留 {pickup} 天。",
        "A hold waits at most {days} days; once the book arrives it is kept {pickup} days.",
    ),
    "label_hold_box": ("预约框：我要预约此书", "Hold box: I want to place a hold on this book"),
    "button_confirm_hold": ("确认预约", "Confirm hold"),
    "hold_tick_box": ("请先在“预约框”里挑勾。", "Tick the hold box first."),
    "hold_refused_heading": ("不能预约", "The hold cannot be placed"),
    "hold_placed_heading": ("预约成功", "Hold placed"),
    "hold_placed": (
        "已为您预约《{title}》，您排在第 {position} 位。预约记录保留至 {expires}。",
        "Your hold on “{title}” is placed: you are number {position} in the queue."
        " It is kept until {expires}.",
    ),
    "hold_email_note": (
        "图书到馆后，我们将发邮件通知您（{email}）。",
        "We will email you ({email}) when the book is waiting for you.",
    ),
    "hold_no_email_note": (
        "您没有留下邮箱，请在“我的图书馆”中查看预约到书信息。",
        "You have no email address on file: check Arrived holds in My Library.",
    ),
    "back_to_record": ("返回书目", "Back to the record"),
    "see_my_holds": ("查看预约信息", "See my holds"),
    # --- login ------------------------------------------------------------------------------
    "login_heading": ("登录我的图书馆", "Log in to My Library"),
    "label_card_number": ("读者证号", "Library card number"),
    "label_pin": ("密码", "PIN"),
    "button_log_in": ("登录", "Log in"),
    "login_failed": (
        "读者证号或密码不正确。",
        "The card number or PIN is not right.",
    ),
    "login_wait": (
        "密码错误次数过多，请 {seconds} 秒后再试。",
        "Too many wrong PINs: try again in {seconds} seconds.",
    ),
    "logged_out": ("您已退出。", "You are logged out."),
    "session_ended": ("登录已超时，请重新登录。", "Your session has ended; please log in again."),
    "form_expired": (
        "该表单已过期或不是从本站提交的，请重新操作。",
        "This form has expired or did not come from this site; please try again.",
    ),
    # --- My Library -------------------------------------------------------------------------
    "my_heading": ("我的图书馆", "My Library"),
    "my_sections": ("我的图书馆栏目", "My Library sections"),
    "card_heading": ("证件信息", "Card information"),
    "card_name": ("姓名", "Name"),
    "card_number": ("读者证号", "Card number"),
    "card_category": ("读者类型", "Category"),
    "card_max_loans": ("最大可借图书", "Maximum loans"),
    "card_max_holds": ("最大可预约图书", "Maximum holds"),
    "card_holds_used": ("已预约", "Holds used"),
    "card_loans_used": ("已借", "Loans"),
    "card_email": ("邮箱", "Email"),
    "card_status": ("证件状态", "Card status"),
    "card_ok": ("正常", "Valid"),
    "card_blocked": ("已停用，请到服务台咨询", "Blocked: please ask at the service desk"),
    "card_hold_suspended": ("停止预约至 {date}", "Holds suspended until {date}"),
    "loans_heading": ("借阅信息", "Loans"),
    "loans_none": ("您目前没有借书。", "You have nothing on loan."),
    "col_due": ("应还日期", "Due"),
    "col_renewals": ("已续借", "Renewals"),
    "col_action": ("操作", "Action"),
    "overdue": ("已超期", "Overdue"),
    "button_renew": ("续借", "Renew"),
    "renewed": ("《{title}》已续借，新的应还日期 {due}。", "“{title}” is renewed: now due {due}."),
    "renew_refused": ("《{title}》不能续借：{why}", "“{title}” cannot be renewed: {why}"),
    "holds_heading": ("预约信息", "Holds"),
    "holds_none": ("您没有等待中的预约。", "You have no holds waiting."),
    "col_placed": ("预约日期", "Placed"),
    "col_expires": ("失效日期", "Expires"),
    "col_queue": ("排队位置", "Queue position"),
    "col_pickup": ("取书地", "Pickup desk"),
    "button_cancel_hold": ("取消预约", "Cancel hold"),
    "hold_cancelled": ("已取消《{title}》的预约。", "Your hold on “{title}” is cancelled."),
    "cancel_refused": ("不能取消：{why}", "The hold cannot be cancelled: {why}"),
    "arrived_heading": ("预约到书信息", "Arrived holds"),
    "arrived_none": ("目前没有为您保留的预约书。", "No books are waiting for you."),
    "col_deadline": ("保留截止", "Pick up by"),
    "fees_heading": ("费用", "Fees"),
    "fees_none": ("您没有未付的费用。", "You owe nothing."),
    "fees_total": ("合计欠款 {amount}", "Total owed {amount}"),
    "col_fee_kind": ("类型", "Kind"),
    "col_fee_description": ("说明", "Description"),
    "col_fee_amount": ("金额", "Amount"),
    "col_fee_outstanding": ("未付", "Outstanding"),
    "col_fee_date": ("日期", "Date"),
    "fee_overdue": ("超期罚款", "Overdue fine"),
    "fee_damage": ("损坏赔偿", "Damage"),
    "fee_replacement": ("丢失赔偿", "Replacement"),
    "fee_administrative": ("管理费", "Administrative"),
    "fee_processing": ("手续费", "Processing"),
    "fee_other": ("其他", "Other"),
    # --- interlibrary loan ------------------------------------------------------------------
    "ill_heading": ("申请单查询", "Interlibrary loan requests"),
    "ill_none": ("您还没有馆际互借申请。", "You have no interlibrary loan requests."),
    "ill_new": ("新建馆际互借申请", "New interlibrary loan request"),
    "col_ill_number": ("申请单号", "Request number"),
    "col_ill_lender": ("提供馆", "Lender"),
    "col_ill_status": ("状态", "Status"),
    "col_ill_date": ("申请日期", "Requested"),
    "ill_form_heading": ("馆际互借申请", "Interlibrary loan request"),
    "ill_form_intro": (
        "请填写您要借阅的文献。带 * 的为必填项。",
        "Describe the item you want to borrow. Fields marked * are required.",
    ),
    "ill_section_item": ("文献信息", "The item"),
    "ill_section_delivery": ("送书与联系方式", "Delivery and contact"),
    "ill_title": ("题名 *", "Title *"),
    "ill_author": ("著者", "Author"),
    "ill_publisher": ("出版者", "Publisher"),
    "ill_year": ("出版年", "Year"),
    "ill_isbn": ("ISBN", "ISBN"),
    "ill_issn": ("ISSN", "ISSN"),
    "ill_language": ("语种", "Language"),
    "ill_material_type": ("文献类型", "Material type"),
    "ill_lender": ("提供馆", "Lender"),
    "ill_any_lender": ("任一合作馆", "Any partner library"),
    "ill_delivery": ("送书方式", "Delivery"),
    "ill_delivery_courier": ("快递", "Courier"),
    "ill_delivery_mail": ("邮寄", "Mail"),
    "ill_delivery_pickup": ("到馆自取", "Pick up at the library"),
    "ill_reader": ("读者", "Reader"),
    "ill_recipient": ("收件人 *", "Recipient *"),
    "ill_email": ("电子邮箱 *", "Email *"),
    "ill_phone": ("电话", "Phone"),
    "ill_reference": ("自定义申请单号", "Your own reference"),
    "ill_note": ("备注", "Note"),
    "material_book": ("图书", "Book"),
    "material_journal": ("期刊", "Journal"),
    "material_thesis": ("学位论文", "Thesis"),
    "material_article": ("期刊文章", "Article"),
    "button_ill_review": ("下一步：核对申请", "Next: review the request"),
    "ill_confirm_heading": ("核对馆际互借申请", "Review your request"),
    "ill_confirm_intro": (
        "请核对以下信息，确认无误后提交。",
        "Check the request below, then send it.",
    ),
    "ill_fee_note": (
        "本申请将收取服务费 {amount}。",
        "This request costs a service fee of {amount}.",
    ),
    "button_ill_submit": ("提交申请", "Send request"),
    "button_ill_edit": ("返回修改", "Change it"),
    "ill_problems": ("申请还不能提交：", "The request cannot be sent yet:"),
    "ill_done_heading": ("申请已提交", "Request sent"),
    "ill_done": (
        "您的馆际互借申请已提交，申请单号为 {number}。",
        "Your interlibrary loan request is sent. Its number is {number}.",
    ),
    "ill_done_follow": (
        "可在“我的图书馆 · 申请单查询”中查看进度。",
        "Follow it under My Library, Interlibrary loan requests.",
    ),
    "ill_not_offered": (
        "本馆暂未开通馆际互借。",
        "This library does not offer interlibrary loan yet.",
    ),
    # the borrower's request states (gateway/circulation/ill_states.py BorrowerState)
    "ill_status_sent": ("已发送提供馆", "Sent to the lender"),
    "ill_status_will_supply": ("提供馆将提供", "The lender will supply it"),
    "ill_status_shipped": ("已寄出", "On its way"),
    "ill_status_received": ("已到馆，请到借书处取书", "Arrived: collect it at the desk"),
    "ill_status_checked_in": ("已归还本馆", "Returned to us"),
    "ill_status_returned": ("已寄还提供馆", "Sent back to the lender"),
    "ill_status_completed": ("已完成", "Completed"),
    "ill_status_cancel_pending": ("正在取消", "Being cancelled"),
    "ill_status_cancelled": ("已取消", "Cancelled"),
    "ill_status_end_of_rota": ("所有提供馆均无法提供", "No lender could supply it"),
    "ill_rota": ("向以下馆依次申请", "Libraries to ask, in this order"),
    "ill_rota_hint": (
        "第一个馆无法提供时，申请自动转给下一个馆。可调整顺序，或选“不申请”。",
        "When a library cannot supply it, the request goes on to the next. Change the order,"
        " or choose “do not ask”.",
    ),
    "ill_rota_choice": ("第 {place} 个", "Choice {place}"),
    "ill_rota_skip": ("不申请", "Do not ask"),
    "ill_rota_empty": ("请至少选择一个提供馆。", "Choose at least one library to ask."),
    # --- union search across the partner libraries ---------------------------------------------
    "union_intro": (
        "同时检索各合作馆的书目，同一种书合并显示，并列出收藏它的馆。",
        "Search the partner libraries' catalogues at once: each work is listed once, with every"
        " library that holds it.",
    ),
    "union_libraries_heading": ("各馆检索情况", "Libraries searched"),
    "union_wait_note": (
        "检索最多等待 {seconds} 秒；未在时限内回答的馆会注明。",
        "The search waits at most {seconds} s; libraries that did not answer in time are marked.",
    ),
    "union_state_connecting": ("正在连接……", "Connecting…"),
    "union_state_searching": ("正在检索……", "Searching…"),
    "union_state_ok": ("{hits} 条命中", "{hits} hits"),
    "union_state_diagnostic": ("不支持此检索：{error}", "Could not run this search: {error}"),
    "union_state_failed": ("连接失败：{error}", "Failed: {error}"),
    "union_state_timeout": ("未在时限内回答", "No answer in time"),
    "union_ms": ("{ms} 毫秒", "{ms} ms"),
    "union_answered": (
        "{answered} 个馆已回答，{silent} 个馆未回答或出错。",
        "{answered} libraries answered; {silent} did not answer or failed.",
    ),
    "union_in_progress": (
        "正在检索：{answered}/{total} 个馆已有结果。",
        "Searching: {answered} of {total} libraries have finished.",
    ),
    "union_waiting": ("正在等待各馆回答……", "Waiting for the libraries to answer…"),
    "union_choose_libraries": (
        "检索的图书馆（{chosen}/{total}）",
        "Libraries to search ({chosen} of {total})",
    ),
    "union_libraries_to_search": ("检索这些图书馆", "Search these libraries"),
    "union_sort_label": ("排序", "Sort by"),
    "union_sort_relevance": ("相关度", "relevance"),
    "union_sort_title": ("题名", "title"),
    "union_sort_author": ("著者", "author"),
    "union_sort_year": ("出版年（新→旧）", "year (newest first)"),
    "union_facets_label": ("缩小范围", "Narrow the results"),
    "union_facet_library": ("收藏馆", "Holding library"),
    "union_facet_year": ("出版年", "Year"),
    "union_facet_language": ("语种", "Language"),
    "union_facet_remove": ("取消此条件", "Remove this filter"),
    "union_works_shown": ("符合所选条件的 {count} 种", "{count} match the filters chosen"),
    "union_none_narrowed": ("没有符合所选条件的书目。", "No work matches the filters chosen."),
    "language_chi": ("中文", "Chinese"),
    "language_jpn": ("日文", "Japanese"),
    "language_eng": ("英文", "English"),
    "language_kor": ("韩文", "Korean"),
    "language_fre": ("法文", "French"),
    "language_ger": ("德文", "German"),
    "language_rus": ("俄文", "Russian"),
    "union_results_heading": ("合并结果", "Merged results"),
    "union_works_count": ("共 {count} 种", "{count} works"),
    "union_none": ("各馆都没有找到符合条件的书目。", "No library found anything."),
    "union_held_by": ("收藏馆", "Held by"),
    "union_offers_ill": ("可馆际互借", "lends through ILL"),
    "union_no_ill_copy": ("无可外借的复本", "no copy lent to other libraries"),
    "union_request_ill": ("通过馆际互借申请", "Request through ILL"),
    "union_log_in_to_request": (
        "登录后可通过馆际互借申请这些书。",
        "Log in to request these works through interlibrary loan.",
    ),
    # --- errors -----------------------------------------------------------------------------
    "not_found_heading": ("页面不存在", "Page not found"),
    "not_found": ("没有这个页面。", "There is no such page."),
    "server_error_heading": ("出错了", "Something went wrong"),
    "server_error": (
        "系统暂时无法处理您的请求，请稍后再试。",
        "The library system could not answer just now; please try again shortly.",
    ),
    "busy": ("系统繁忙，请稍后再试。", "The system is busy; please try again shortly."),
}


def language_of(value: str | None) -> str | None:
    """A supported language code from `?lang=` or the cookie, else None."""
    if value is None:
        return None
    value = value.strip().lower()
    if value.startswith("zh"):
        return "zh"
    if value.startswith("en"):
        return "en"
    return None


class Translator:
    """The catalogue in one language, as templates call it: `_("key", field=value)`."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self._column = 1 if self.language == "en" else 0

    def __call__(self, key: str, **fields: object) -> str:
        text = MESSAGES[key][self._column]
        return text.format(**fields) if fields else text

    def has(self, key: str) -> bool:
        return key in MESSAGES


__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "MESSAGES", "Translator", "language_of"]
