"""Group-buy errors: stable codes and facts; the words are in
templates/chat/errors/groupbuy_*.txt."""

from __future__ import annotations

from social_mall.errors import MallError


class GroupbuyError(MallError):
    code = "groupbuy_error"


class CampaignNotLiveError(GroupbuyError):
    code = "groupbuy_not_live"

    def __init__(self, campaign_id: int) -> None:
        super().__init__(campaign_id)
        self.campaign_id = campaign_id


class TeamFullError(GroupbuyError):
    """Someone else took the last seat (or the team closed meanwhile): offer a new team."""

    code = "groupbuy_team_full"

    def __init__(self, team_id: int, campaign_id: int) -> None:
        super().__init__(team_id, campaign_id)
        self.team_id, self.campaign_id = team_id, campaign_id


class TeamClosedError(GroupbuyError):
    code = "groupbuy_team_closed"

    def __init__(self, team_id: int, status: str) -> None:
        super().__init__(team_id, status)
        self.team_id, self.status = team_id, status


class AlreadyInTeamError(GroupbuyError):
    code = "groupbuy_already_in"

    def __init__(self, team_id: int) -> None:
        super().__init__(team_id)
        self.team_id = team_id


class NoAddressError(GroupbuyError):
    """A join that was to use the member's saved address found none: ask for one."""

    code = "groupbuy_no_address"


class TeamLimitError(GroupbuyError):
    code = "groupbuy_team_limit"

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class QtyLimitError(GroupbuyError):
    code = "groupbuy_qty_limit"

    def __init__(self, qty: int, max_qty: int) -> None:
        super().__init__(qty, max_qty)
        self.qty, self.max_qty = qty, max_qty


class NotLeaderError(GroupbuyError):
    code = "groupbuy_not_leader"

    def __init__(self, team_id: int) -> None:
        super().__init__(team_id)
        self.team_id = team_id


class ExtendRefusedError(GroupbuyError):
    code = "groupbuy_extend_refused"

    def __init__(self, team_id: int, hours: int) -> None:
        super().__init__(team_id, hours)
        self.team_id, self.hours = team_id, hours


class BadTermsError(GroupbuyError):
    code = "groupbuy_bad_terms"

    def __init__(self, fields: list[str]) -> None:
        super().__init__(fields)
        self.fields = ", ".join(fields)


class BadWecomSettingError(GroupbuyError):
    """A WeCom bot setting that can't be used (rules.wecom_problem says why)."""

    code = "groupbuy_wecom_setting"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, problem)
        self.field, self.problem = field, problem
