"""The Simplified Chinese texts Discuz! shows (source/language/lang_message.php, lang_error.php)."""

from __future__ import annotations

import re
from typing import Any

MESSAGES: dict[str, str] = {
    "login_succeed": "欢迎您回来，{usergroup} {username}，现在将转入登录前页面",
    "location_login_succeed": "",
    "location_login": "",
    "upload_login_required": "请先登录",
    "login_invalid": "登录失败，您还可以尝试 {loginperm} 次",
    "login_strike": "密码错误次数过多，请 15 分钟后重新登录",
    "login_question_empty": "请选择安全提问以及填写正确的答案",
    "login_question_invalid": "抱歉，安全提问答案填写错误",
    "login_password_invalid": "抱歉，您输入的密码有误",
    "profile_passwd_illegal": "抱歉，密码空或包含非法字符",
    "location_login_outofdate": "您当前的帐号已经太长时间未登录网站已经被冻结，必须验证邮箱后才能解除冻结状态",
    "logout_succeed": "您已退出站点，现在将以游客身份转入退出前页面，请稍候…… ",
    "submit_seccode_invalid": "抱歉，验证码填写错误",
    "submit_invalid": "抱歉，您的请求来路不正确或表单验证串不符，无法提交",
    "thread_nonexistence": "抱歉，指定的主题不存在或已被删除或正在被审核",
    "forum_nonexistence": "抱歉，指定的版块不存在",
    "replyperm_login_nopermission": "抱歉，您尚未登录，没有权限在该版块回帖",
    "postperm_login_nopermission": "抱歉，您尚未登录，没有权限在该版块发帖",
    "post_flood_ctrl": "抱歉，您两次发表间隔少于 {floodctrl} 秒，请稍候再发表",
    "post_message_tooshort": "抱歉，您的帖子小于 {minpostsize} 个字符的限制",
    "post_message_toolong": "抱歉，您的帖子超过 {maxpostsize} 个字符的限制",
    "post_subject_toolong": "抱歉，您的标题超过 80 个字符修改标题长度",
    "post_sm_isnull": "抱歉，您尚未输入标题或内容",
    "post_type_isnull": "抱歉，您尚未选择主题的类别",
    "post_thread_closed": "抱歉，本主题已关闭，不再接受新内容",
    "post_reply_succeed": "非常感谢，回复发布成功，现在将转入主题页，请稍候……<br /><a href=\"forum.php?mod=forumdisplay&fid={fid}\">[ 点击这里转入主题列表 ]</a>",
    "post_reply_mod_succeed": "回复需要审核，请等待通过",
    "post_newthread_succeed": "非常感谢，您的主题已发布，现在将转入主题页，请稍候……<br /><a id=\"forward_a\" href=\"forum.php?mod=forumdisplay&fid={fid}\">[ 点击这里转入主题列表 ]</a>",
    "attachment_nonexistence": "抱歉，该附件无法读取",
    "undefined_action": "未定义操作",
    "to_login": "您需要先登录才能继续本操作",
}

REQUEST_TAINTING = "您当前的访问请求当中含有非法字符，已经被系统拒绝"

GROUP_TITLES: dict[int, str] = {1: "管理员", 2: "超级版主", 3: "版主", 4: "禁止发言", 5: "禁止访问", 7: "游客",
                                8: "等待验证会员", 9: "限制会员", 10: "新手上路", 11: "注册会员", 12: "中级会员"}

SECURITY_QUESTIONS: dict[int, str] = {1: "母亲的名字", 2: "爷爷的名字", 3: "父亲出生的城市", 4: "您其中一位老师的名字",
                                      5: "您个人计算机的型号", 6: "您最喜欢的餐馆名称", 7: "驾驶执照最后四位数字"}

# floor names in viewthread (setting postno)
FLOORS = ("楼主", "沙发", "板凳", "地板")

STAFF_GROUPS = frozenset({1, 2, 3})  # disablepostctrl = 1 in a fresh install


def message_text(msgid: str, values: dict[str, Any] | None = None) -> str:
    """The localized text for ``msgid`` with ``{key}`` placeholders filled from ``values``."""
    text = MESSAGES.get(msgid, msgid)
    values = values or {}
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), text)
