"""Business accounts end to end, through the signed official-account endpoint and the
console over HTTP with CSRF: apply in chat (a wrong 统一社会信用代码 is refused with what is
wrong, and nothing is written), approve or reject in the console (audited, pushed to the
applicant), a second decision refused."""

from __future__ import annotations

import re

from sqlalchemy import select

from social_mall_b2b.models import Company
from storage.models import AuditEntry

from b2b_kit import GOOD_USCC, TYPO_USCC, apply_in_chat, console, count, make_mall, pushes, say, simulator

OWNER = "oUser_b2b_owner_000000000001"
OTHER = "oUser_b2b_other_000000000001"


async def company_row(mall, uscc: str = GOOD_USCC) -> Company:
    async with mall.svc.uows() as uow:
        return await uow.session.scalar(select(Company).where(Company.uscc == uscc))


async def test_apply_in_chat_wrong_code_refused_then_approved_in_the_console_with_a_push(
        backend, engine, tmp_path, fake_wechat, aiohttp_client):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    await wx.event(OWNER, "subscribe")
    assert "第 1 步" in await say(wx, OWNER, "申请企业账户")
    assert "第 2 步" in await say(wx, OWNER, "上海味之源餐饮管理有限公司")
    refused = await say(wx, OWNER, TYPO_USCC)
    assert "校验位不对" in refused and TYPO_USCC in refused
    assert "18 位" in await say(wx, OWNER, "91350100M000100")
    assert "无效字符" in await say(wx, OWNER, "91350100M00010OY43")
    assert await count(mall, Company) == 0                                  # nothing written
    assert "第 3 步" in await say(wx, OWNER, GOOD_USCC.lower())               # asked again, accepted
    assert "没有识别出" in await say(wx, OWNER, "张三")
    invoice = await say(wx, OWNER, "张三 138-0013-8000")
    assert "第 4 步" in invoice and GOOD_USCC in invoice
    summary = await say(wx, OWNER, "同上")
    assert "发票抬头：上海味之源餐饮管理有限公司" in summary and "138****8000" in summary
    assert await count(mall, Company) == 0                                  # nothing before 「提交」
    assert "已提交企业账户申请" in await say(wx, OWNER, "提交")
    c = await company_row(mall)
    assert (c.status, c.name, c.contact_phone, c.invoice_tax_no) == (
        "pending", "上海味之源餐饮管理有限公司", "13800138000", GOOD_USCC)
    assert "正在审核" in await say(wx, OWNER, "企业采购")
    # another member with the same code: refused, nothing written
    said = await apply_in_chat(wx, OTHER, "另一家公司")
    assert "已由其他账户申请" in said[-1]
    assert await count(mall, Company) == 1

    csrf = await console(mall)
    page = await (await mall.client.get("/console/b2b/companies?status=pending")).text()
    assert "上海味之源餐饮管理有限公司" in page and GOOD_USCC in page and "138****8000" in page
    # no CSRF token: refused, nothing changes
    resp = await mall.client.post(f"/console/b2b/companies/{c.id}/decide", data={"verdict": "approve"})
    assert resp.status in (400, 403)
    # a rejection needs a reason
    resp = await mall.client.post(f"/console/b2b/companies/{c.id}/decide",
                                  data={"_csrf": csrf, "verdict": "reject", "reason": " "})
    assert resp.status == 400 and "驳回需要填写原因" in await resp.text()
    assert (await company_row(mall)).status == "pending"
    resp = await mall.client.post(f"/console/b2b/companies/{c.id}/decide",
                                  data={"_csrf": csrf, "verdict": "approve"}, allow_redirects=False)
    assert resp.status == 303
    resp = await mall.client.post(f"/console/b2b/companies/{c.id}/decide",
                                  data={"_csrf": csrf, "verdict": "reject", "reason": "重复"})
    assert resp.status == 409 and "已经处理过了" in await resp.text()
    c = await company_row(mall)
    assert (c.status, c.decided_by) == ("approved", "admin:b2b_boss")
    await mall.settle()
    assert "已审核通过" in pushes(mall, OWNER)[-1]
    async with mall.svc.uows() as uow:
        actions = [a.action for a in (await uow.session.scalars(
            select(AuditEntry).where(AuditEntry.subject == f"b2b_company:{c.id}").order_by(AuditEntry.id))).all()]
    assert actions == ["b2b.apply", "b2b.approve"]
    status = await say(wx, OWNER, "企业采购")
    assert "已认证" in status and "企业价" in status


async def test_a_rejected_applicant_is_told_why_and_may_apply_again(backend, engine, tmp_path, fake_wechat,
                                                                     aiohttp_client):
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    await wx.event(OWNER, "subscribe")
    await apply_in_chat(wx, OWNER)
    c = await company_row(mall)
    csrf = await console(mall)
    resp = await mall.client.post(f"/console/b2b/companies/{c.id}/decide",
                                  data={"_csrf": csrf, "verdict": "reject", "reason": "营业执照名称不一致"})
    assert resp.status == 200
    await mall.settle()
    assert "未通过：营业执照名称不一致" in pushes(mall, OWNER)[-1]
    again = await apply_in_chat(wx, OWNER, "上海味之源餐饮有限公司")
    assert "营业执照名称不一致" in again[0] and "已提交" in again[-1]
    c = await company_row(mall)
    assert (c.status, c.name, c.reason) == ("pending", "上海味之源餐饮有限公司", "")
    assert await count(mall, Company) == 1


async def test_wechats_submit_invoice_title_event_fills_the_companys_invoice_details(backend, engine, tmp_path,
                                                                                    fake_wechat, aiohttp_client):
    """The member picks a saved invoice title in WeChat: the signed event fills its company's
    invoice details (audited, told); the same event again changes nothing more; a member
    without an account, or a title without a tax number, changes nothing."""
    import time

    from sqlalchemy import func, select

    from social_mall_b2b.models import Company
    from storage.models import AuditEntry

    from b2b_kit import apply_in_chat, make_mall, pushes, simulator

    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    owner, stranger = "oUser_b2b_invoice_owner_0001", "oUser_b2b_invoice_nobody_001"
    await wx.event(owner, "subscribe")
    await wx.event(stranger, "subscribe")
    await apply_in_chat(wx, owner)

    def event(user: str, tax_no: str, created: int) -> str:
        body = ("<Event><![CDATA[submit_invoice_title]]></Event><title><![CDATA[上海味之源餐饮管理有限公司]]></title>"
                f"<tax_no><![CDATA[{tax_no}]]></tax_no><addr><![CDATA[上海市黄浦区南京东路1号]]></addr>"
                "<phone><![CDATA[021-12345678]]></phone><bank_type><![CDATA[招商银行上海分行]]></bank_type>"
                "<bank_no><![CDATA[121900000000001]]></bank_no><attach><![CDATA[]]></attach>"
                "<title_type><![CDATA[InvoiceUserTitleBusinessType]]></title_type>")
        return wx._envelope(user, "event", body, created)      # (sender, CreateTime, event): one event

    async def company() -> Company:
        async with mall.svc.uows() as uow:
            return await uow.session.scalar(select(Company))

    before = await company()
    now = int(time.time())
    for xml in (event(stranger, "91350100M000100Y43", now), event(owner, "", now + 1)):
        answer = await wx.post(*wx.signed_request(xml, user=owner))
        assert answer.status == 200 and answer.body == "success"
    same = await company()
    assert (same.invoice_title, same.invoice_tax_no, same.invoice_bank) == (
        before.invoice_title, before.invoice_tax_no, before.invoice_bank)
    xml = event(owner, "91350100m000100y43", now + 2)
    for _ in range(2):                                             # WeChat's retry: once
        answer = await wx.post(*wx.signed_request(xml, user=owner))
        assert answer.status == 200 and answer.body == "success"
    c = await company()
    assert (c.invoice_title, c.invoice_tax_no, c.invoice_bank, c.invoice_address) == (
        "上海味之源餐饮管理有限公司", "91350100M000100Y43", "招商银行上海分行 121900000000001",
        "上海市黄浦区南京东路1号 021-12345678")
    async with mall.svc.uows() as uow:
        audits = await uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "b2b.invoice_title"))
    assert audits == 1
    assert any("更新企业开票信息" in p for p in pushes(mall, owner))


async def test_apply_on_the_h5_form_from_the_signed_link_in_chat(backend, engine, tmp_path, fake_wechat,
                                                                 aiohttp_client):
    """「企业采购」 gives a link signed for the member; the form refuses a wrong check digit
    (form kept, nothing written), files a good application (pending, reviewed in the
    console as a chat one), and a tampered or another member's link opens nothing."""
    import re

    from sqlalchemy import select

    from social_mall_b2b.models import Company

    from b2b_kit import GOOD_USCC, TYPO_USCC, count, make_mall, say, simulator

    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    user = "oUser_b2b_h5_applicant_00001"
    await wx.event(user, "subscribe")
    url = re.search(r"(http\S+/b2b/apply/\S+)", await say(wx, user, "企业采购")).group(1)
    path = url[url.index("/b2b/"):]
    page = await mall.client.get(path)
    assert page.status == 200 and "申请企业账户" in await page.text()
    tampered = re.sub(r"s=\w", "s=0", path) if "s=0" not in path else re.sub(r"s=\w", "s=1", path)
    other = re.sub(r"/apply/demo/\d+", "/apply/demo/999999", path)
    for bad in (tampered, other):
        assert (await mall.client.get(bad)).status == 404
        assert (await mall.client.post(bad, data={"name": "x"})).status == 404
    form = {"name": "上海味之源餐饮管理有限公司", "uscc": TYPO_USCC, "contact_name": "张三",
            "contact_phone": "13800138000", "invoice_title": "", "invoice_tax_no": "", "invoice_bank": "",
            "invoice_address": ""}
    refused = await mall.client.post(path, data=form)
    text = await refused.text()
    assert refused.status == 400 and "校验位不对" in text and "上海味之源餐饮管理有限公司" in text
    assert await count(mall, Company) == 0
    done = await mall.client.post(path, data={**form, "uscc": GOOD_USCC.lower()})
    assert done.status == 200 and "已提交企业账户申请" in await done.text()
    async with mall.svc.uows() as uow:
        c = await uow.session.scalar(select(Company))
    assert (c.status, c.uscc, c.invoice_title, c.invoice_tax_no) == (
        "pending", GOOD_USCC, "上海味之源餐饮管理有限公司", GOOD_USCC)
    assert "审核" in await say(wx, user, "企业采购")
    again = await mall.client.post(path, data={**form, "uscc": GOOD_USCC})
    assert again.status == 400 and "审核中或已通过" in await again.text() and await count(mall, Company) == 1


async def test_the_h5_form_refuses_hostile_input_with_a_4xx_and_files_nothing(backend, engine, tmp_path, fake_wechat,
                                                                             aiohttp_client):
    """Round-2 attack on the H5 application form (docs/security.md): a non-ASCII signature
    (hmac.compare_digest raises on non-ASCII str), a body that isn't UTF-8, a NUL in a field
    (PostgreSQL refuses it) are each a 4xx with nothing filed, never a 500; the genuine
    link still files afterwards."""
    mall = await make_mall(backend, tmp_path, fake_wechat, aiohttp_client)
    wx = simulator(mall)
    user = "oUser_b2b_h5_hostile_000001"
    await wx.event(user, "subscribe")
    url = re.search(r"(http\S+/b2b/apply/\S+)", await say(wx, user, "企业采购")).group(1)
    path = url[url.index("/b2b/"):]
    accented = re.sub(r"s=\w+", "s=%C3%A9" + "0" * 23, path)
    assert (await mall.client.get(accented)).status == 404
    assert (await mall.client.post(accented, data={"name": "x"})).status == 404
    form = {"name": "上海味之源餐饮管理有限公司", "uscc": GOOD_USCC, "contact_name": "张三",
            "contact_phone": "13800138000", "invoice_title": "", "invoice_tax_no": "", "invoice_bank": "",
            "invoice_address": ""}
    not_utf8 = await mall.client.post(path, data=b"name=\xc9\xcf\xba\xa3&uscc=" + GOOD_USCC.encode(),
                                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert not_utf8.status == 400
    nul = await mall.client.post(path, data={**form, "contact_name": "张\x00三"})
    assert nul.status == 400
    assert await count(mall, Company) == 0
    done = await mall.client.post(path, data=form)
    assert done.status == 200 and await count(mall, Company) == 1
