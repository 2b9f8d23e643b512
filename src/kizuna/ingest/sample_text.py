"""Words and sentences the sample generator draws from: names, places, feedback.

The feedback corpus is organised by *theme* and *sentiment* so that text
analysis run on the sample can be checked against what was meant: every
sentence names its theme with the words a customer would use (価格, 配送,
support, app...), detractors draw complaints and promoters draw praise.
Everything here is invented; any likeness to a real person or company is
chance, and e-mail domains are the reserved ``example.*`` names.
"""

from __future__ import annotations

from typing import Final

# The tables below are laid out by hand, several entries a line, to stay readable.
# fmt: off

#: Feedback themes; the analytics' text module should recover these.
THEMES: Final = ("price", "quality", "delivery", "support", "staff", "app", "points")

#: (kanji, romaji, relative frequency) of common Japanese family names.
FAMILY_NAMES: Final = (
    ("佐藤", "sato", 19), ("鈴木", "suzuki", 18), ("高橋", "takahashi", 14),
    ("田中", "tanaka", 13), ("伊藤", "ito", 11), ("渡辺", "watanabe", 11),
    ("山本", "yamamoto", 11), ("中村", "nakamura", 10), ("小林", "kobayashi", 10),
    ("加藤", "kato", 9), ("吉田", "yoshida", 8), ("山田", "yamada", 8),
    ("佐々木", "sasaki", 7), ("山口", "yamaguchi", 6), ("松本", "matsumoto", 6),
    ("井上", "inoue", 6), ("木村", "kimura", 6), ("林", "hayashi", 5),
    ("斎藤", "saito", 5), ("清水", "shimizu", 5), ("山崎", "yamazaki", 5),
    ("森", "mori", 5), ("池田", "ikeda", 5), ("橋本", "hashimoto", 5),
    ("阿部", "abe", 5), ("石川", "ishikawa", 4), ("山下", "yamashita", 4),
    ("中島", "nakajima", 4), ("石井", "ishii", 4), ("小川", "ogawa", 4),
    ("前田", "maeda", 4), ("岡田", "okada", 4), ("長谷川", "hasegawa", 4),
    ("藤田", "fujita", 4), ("後藤", "goto", 4), ("近藤", "kondo", 4),
    ("村上", "murakami", 3), ("遠藤", "endo", 3), ("青木", "aoki", 3),
    ("坂本", "sakamoto", 3), ("斉藤", "saito", 3), ("福田", "fukuda", 3),
    ("太田", "ota", 3), ("西村", "nishimura", 3), ("藤井", "fujii", 3),
    ("金子", "kaneko", 3), ("岡本", "okamoto", 3), ("藤原", "fujiwara", 3),
    ("中野", "nakano", 3), ("三浦", "miura", 3), ("原田", "harada", 3),
    ("松田", "matsuda", 3), ("竹内", "takeuchi", 3), ("小野", "ono", 3),
    ("田村", "tamura", 3), ("中山", "nakayama", 3), ("和田", "wada", 3),
    ("石田", "ishida", 3), ("森田", "morita", 3), ("上田", "ueda", 3),
)
GIVEN_FEMALE: Final = (
    ("陽子", "yoko"), ("恵子", "keiko"), ("美咲", "misaki"), ("愛", "ai"), ("結衣", "yui"),
    ("さくら", "sakura"), ("真由美", "mayumi"), ("由美", "yumi"), ("明美", "akemi"),
    ("陽菜", "hina"), ("葵", "aoi"), ("凛", "rin"), ("優子", "yuko"), ("裕子", "hiroko"),
    ("智子", "tomoko"), ("直美", "naomi"), ("麻衣", "mai"), ("彩", "aya"), ("芽依", "mei"),
    ("千尋", "chihiro"), ("京子", "kyoko"), ("久美子", "kumiko"), ("舞", "mai"),
    ("香織", "kaori"), ("美穂", "miho"), ("奈々", "nana"), ("彩花", "ayaka"), ("花子", "hanako"),
)
GIVEN_MALE: Final = (
    ("翔太", "shota"), ("大輔", "daisuke"), ("健太", "kenta"), ("拓也", "takuya"),
    ("誠", "makoto"), ("浩", "hiroshi"), ("隆", "takashi"), ("蓮", "ren"), ("湊", "minato"),
    ("大翔", "hiroto"), ("悠真", "yuma"), ("陽翔", "haruto"), ("和也", "kazuya"),
    ("直樹", "naoki"), ("健一", "kenichi"), ("達也", "tatsuya"), ("亮", "ryo"), ("学", "manabu"),
    ("修", "osamu"), ("剛", "tsuyoshi"), ("一郎", "ichiro"), ("雄一", "yuichi"),
    ("智也", "tomoya"), ("颯太", "sota"), ("樹", "itsuki"), ("悠人", "yuto"), ("太郎", "taro"),
)
WESTERN_GIVEN: Final = (
    "Emma", "Olivia", "Sophie", "Chloe", "Grace", "Hannah", "Laura", "Mia", "Anna", "Julia",
    "James", "Daniel", "Lucas", "Oliver", "Thomas", "David", "Ethan", "Noah", "Liam", "Ryan",
    "Wei", "Min-jun", "Priya", "Arjun", "Nguyen", "Maria", "Carlos", "Lena", "Marco", "Sara",
)
WESTERN_FAMILY: Final = (
    "Smith", "Johnson", "Brown", "Wilson", "Taylor", "Anderson", "Thomas", "Moore", "Martin",
    "Lee", "Clark", "Lewis", "Walker", "Young", "King", "Wright", "Chen", "Wang", "Kim", "Park",
    "Garcia", "Silva", "Muller", "Rossi", "Dubois", "Novak", "Patel", "Tran", "Lopez", "Evans",
)
EMAIL_DOMAINS: Final = (
    "example.jp", "example.co.jp", "example.ne.jp", "example.com", "example.net", "example.org",
)

#: (prefecture, region, population in 10k, first three postal-code digits).
PREFECTURES: Final = (
    ("北海道", "北海道", 514, "060"), ("青森県", "東北", 120, "030"), ("岩手県", "東北", 118, "020"),
    ("宮城県", "東北", 228, "980"), ("秋田県", "東北", 93, "010"), ("山形県", "東北", 104, "990"),
    ("福島県", "東北", 179, "960"), ("茨城県", "関東", 284, "310"), ("栃木県", "関東", 191, "320"),
    ("群馬県", "関東", 191, "370"), ("埼玉県", "関東", 733, "330"), ("千葉県", "関東", 627, "260"),
    ("東京都", "関東", 1404, "100"), ("神奈川県", "関東", 923, "220"), ("新潟県", "中部", 214, "950"),
    ("富山県", "中部", 102, "930"), ("石川県", "中部", 111, "920"), ("福井県", "中部", 75, "910"),
    ("山梨県", "中部", 80, "400"), ("長野県", "中部", 202, "380"), ("岐阜県", "中部", 195, "500"),
    ("静岡県", "中部", 355, "420"), ("愛知県", "中部", 748, "450"), ("三重県", "近畿", 174, "510"),
    ("滋賀県", "近畿", 141, "520"), ("京都府", "近畿", 254, "600"), ("大阪府", "近畿", 878, "530"),
    ("兵庫県", "近畿", 537, "650"), ("奈良県", "近畿", 130, "630"), ("和歌山県", "近畿", 90, "640"),
    ("鳥取県", "中国", 54, "680"), ("島根県", "中国", 65, "690"), ("岡山県", "中国", 186, "700"),
    ("広島県", "中国", 276, "730"), ("山口県", "中国", 131, "750"), ("徳島県", "四国", 70, "770"),
    ("香川県", "四国", 93, "760"), ("愛媛県", "四国", 131, "790"), ("高知県", "四国", 67, "780"),
    ("福岡県", "九州", 510, "810"), ("佐賀県", "九州", 80, "840"), ("長崎県", "九州", 128, "850"),
    ("熊本県", "九州", 172, "860"), ("大分県", "九州", 111, "870"), ("宮崎県", "九州", 105, "880"),
    ("鹿児島県", "九州", 157, "890"), ("沖縄県", "沖縄", 147, "900"),
)
#: (occupation, relative frequency); the labels of a Japanese sign-up form.
OCCUPATIONS: Final = (
    ("会社員", 38), ("公務員", 6), ("自営業", 7), ("経営者・役員", 3), ("専門職", 6),
    ("パート・アルバイト", 13), ("学生", 7), ("主婦・主夫", 11), ("無職", 5), ("その他", 4),
)
STORES: Final = (
    "渋谷店", "新宿店", "銀座店", "横浜店", "大宮店", "千葉店", "名古屋店", "梅田店",
    "心斎橋店", "京都店", "神戸店", "札幌店", "仙台店", "広島店", "福岡天神店", "那覇店",
)

#: Parent categories: (id suffix, name).
PARENT_CATEGORIES: Final = (
    ("coffee", "コーヒー"), ("tea", "お茶・紅茶"), ("sweets", "スイーツ・軽食"),
    ("tableware", "器・グッズ"), ("brewing", "抽出器具"), ("appliance", "家電"),
    ("gift", "ギフト"), ("business", "業務用"),
)
#: Leaf categories: (slug, parent slug, name, lowest price, highest price, product stems).
LEAF_CATEGORIES: Final = (
    ("coffee-beans", "coffee", "コーヒー豆", 900, 4800,
     ("エチオピア イルガチェフェ", "ブラジル サントス", "コロンビア スプレモ", "グアテマラ アンティグア",
      "ケニア AA", "深煎りブレンド", "中煎りブレンド", "デカフェ ブレンド")),
    ("drip-bags", "coffee", "ドリップバッグ", 400, 2600,
     ("ドリップバッグ アソート", "ドリップバッグ 深煎り", "ドリップバッグ 季節限定", "ドリップバッグ デカフェ")),
    ("instant", "coffee", "インスタント・スティック", 300, 1800,
     ("スティックラテ", "カフェオレベース", "インスタントコーヒー", "アイスコーヒー リキッド")),
    ("green-tea", "tea", "日本茶", 500, 5400,
     ("静岡 深蒸し煎茶", "宇治 玉露", "八女 かぶせ茶", "ほうじ茶", "抹茶 初昔", "玄米茶")),
    ("black-tea", "tea", "紅茶", 500, 4200,
     ("ダージリン ファーストフラッシュ", "アッサム CTC", "アールグレイ", "和紅茶", "チャイ スパイス")),
    ("herbal", "tea", "ハーブティー", 400, 2800,
     ("カモミール", "ルイボス", "ペパーミント", "ハイビスカス ブレンド")),
    ("baked", "sweets", "焼き菓子", 200, 3600,
     ("フィナンシェ", "マドレーヌ", "クッキー缶", "バウムクーヘン", "ガレット")),
    ("chocolate", "sweets", "チョコレート", 300, 4500,
     ("カカオ 70% タブレット", "ボンボンショコラ", "チョコレートがけナッツ", "生チョコレート")),
    ("snacks", "sweets", "軽食", 150, 1200,
     ("グラノーラ", "ドライフルーツ", "ミックスナッツ", "プロテインバー")),
    ("mugs", "tableware", "マグカップ", 1200, 6800,
     ("美濃焼 マグ", "波佐見焼 マグ", "ステンレス タンブラー", "ダブルウォール グラス")),
    ("plates", "tableware", "プレート・ソーサー", 900, 5500,
     ("有田焼 ソーサー", "木製 プレート", "ケーキ皿", "小皿セット")),
    ("bottles", "tableware", "ボトル・保存容器", 800, 4800,
     ("コーヒーキャニスター", "真空保存容器", "マイボトル", "茶葉ストッカー")),
    ("drippers", "brewing", "ドリッパー", 800, 6500,
     ("円すい ドリッパー", "台形 ドリッパー", "ガラス サーバー", "ペーパーフィルター")),
    ("kettles", "brewing", "ケトル", 3000, 16000,
     ("細口 ドリップケトル", "銅 ケトル", "ステンレス ケトル", "温度計付き ケトル")),
    ("grinders", "brewing", "ミル", 2500, 28000,
     ("手挽き ミル", "セラミック ミル", "コンパクト ミル", "電動 ミル")),
    ("coffee-makers", "appliance", "コーヒーメーカー", 8000, 98000,
     ("全自動 コーヒーメーカー", "エスプレッソマシン", "ドリップ式 コーヒーメーカー", "カプセル式 マシン")),
    ("electric-kettles", "appliance", "電気ケトル", 4000, 22000,
     ("温度調節 電気ケトル", "ドリップ用 電気ケトル", "コンパクト 電気ケトル")),
    ("milk-frothers", "appliance", "ミルクフォーマー", 2500, 18000,
     ("電動 ミルクフォーマー", "ハンディ フォーマー", "スチーマー")),
    ("gift-sets", "gift", "ギフトセット", 2000, 15000,
     ("コーヒーギフト", "紅茶ギフト", "焼き菓子ギフト", "カタログギフト")),
    ("seasonal", "gift", "季節限定", 1000, 8000,
     ("お中元セット", "お歳暮セット", "クリスマス アソート", "バレンタイン セット")),
    ("subscription", "gift", "定期便", 1800, 9800,
     ("コーヒー定期便", "紅茶定期便", "お菓子定期便")),
    ("office-coffee", "business", "オフィスコーヒー", 3000, 60000,
     ("業務用 コーヒー豆 1kg", "オフィス用 ドリップバッグ 100袋", "業務用 カフェオレベース")),
    ("office-supplies", "business", "オフィス備品", 500, 30000,
     ("紙コップ 500個", "マドラー 1000本", "スティックシュガー 500本", "業務用 ミルク")),
    ("office-equipment", "business", "業務用機器", 20000, 100000,
     ("業務用 コーヒーマシン", "ウォーターサーバー", "業務用 グラインダー")),
)
PRODUCT_VARIANTS: Final = (
    "100g", "200g", "500g", "S", "M", "L", "限定", "ホワイト", "ブラック", "ネイビー",
    "5個入", "10個入", "20個入", "お試し", "プレミアム",
)

INDUSTRIES: Final = (
    "IT・ソフトウェア", "製造", "小売", "医療・福祉", "金融", "不動産", "建設",
    "広告・メディア", "教育", "物流", "専門サービス", "飲食",
)
COMPANY_CORES: Final = (
    "サクラ", "ミドリ", "アオバ", "ヒカリ", "ツバサ", "アサヒ", "ミナト", "ヤマト", "ホクト",
    "ニシキ", "カエデ", "スバル", "ミライ", "ハルカ", "イロハ", "コスモ", "アルファ", "ネクスト",
    "ブライト", "グリーン", "ブルー", "サンライズ", "オーシャン", "フォレスト", "リバー",
    "テラ", "ノヴァ", "ステラ", "ルミナ", "ヴィーナス",
)
COMPANY_WORDS: Final = (
    "テック", "システムズ", "ソリューションズ", "工業", "製作所", "商事", "物産", "ホールディングス",
    "ラボ", "デザイン", "メディカル", "ロジスティクス", "不動産", "建設", "フーズ", "パートナーズ",
)
#: B2B research topics, for account-level intent.
B2B_TOPICS: Final = (
    "pricing", "security", "integration", "sustainability", "onboarding", "support-plan",
)
COMMUNITY_EVENT_NAMES: Final = {
    "meetup": ("コーヒー好きの集い", "テイスティング会", "ご近所カフェ交流会"),
    "webinar": ("おうちカフェ入門ウェビナー", "新豆発表オンライン", "Brewing at home (English)"),
    "user_group": ("オフィスコーヒー ユーザー会", "総務担当者の会", "Office Plan Users Group"),
    "workshop": ("ハンドドリップ ワークショップ", "ラテアート教室", "焙煎体験ワークショップ"),
    "conference": ("Kizuna Coffee Festival", "Kizuna Business Summit"),
}
TRAINING_COURSES: Final = {
    "onboarding": ("オフィスプラン導入ガイド", "発注ポータルの使い方"),
    "course": ("マシンのお手入れ講座", "おいしい淹れ方講座", "在庫管理と自動発注", "API連携入門"),
    "certification": ("オフィスバリスタ認定", "発注管理者認定"),
}

#: (sentence, sentiment) per theme and language. Sentences name their theme.
FEEDBACK: Final[dict[str, dict[str, dict[str, tuple[str, ...]]]]] = {
    "ja": {
        "price": {
            "pos": ("この品質でこの価格なら満足です。", "セールの値段がお得で助かります。",
                    "価格が手頃で続けやすいです。"),
            "neg": ("価格が高いと感じます。", "最近値上がりして買いにくくなりました。",
                    "送料を含めると値段が割高です。", "他店の方が安いので価格を見直してほしい。"),
        },
        "quality": {
            "pos": ("豆の品質が良く、香りが素晴らしいです。", "味が安定していて品質に信頼があります。",
                    "商品の品質が高く、毎朝楽しみです。", "丁寧に作られていて品質の良さを感じます。"),
            "neg": ("品質にばらつきがあり残念でした。", "前回より味が落ちた気がします。",
                    "商品の品質が期待以下でした。"),
        },
        "delivery": {
            "pos": ("配送が早く、梱包も丁寧でした。", "注文の翌日に届いて助かりました。"),
            "neg": ("配送が遅く、予定日に届きませんでした。", "梱包が雑で箱がつぶれていました。",
                    "届くまでに時間がかかりすぎます。", "配送状況が分かりにくいです。"),
        },
        "support": {
            "pos": ("問い合わせへの対応が早く丁寧でした。", "サポートの方が親身に対応してくれました。"),
            "neg": ("問い合わせても返事がなく不安でした。", "サポートの対応が遅く、解決しませんでした。",
                    "電話がつながらず困りました。", "チャットボットでは問題が解決しませんでした。"),
        },
        "staff": {
            "pos": ("店員さんの接客がとても感じ良かったです。", "スタッフの方のおすすめが的確でした。",
                    "店舗スタッフの説明が分かりやすかったです。"),
            "neg": ("店員の接客が冷たく感じました。", "スタッフの知識が足りないと感じました。"),
        },
        "app": {
            "pos": ("アプリが使いやすく、注文が簡単です。", "アプリで履歴から再注文できて便利です。"),
            "neg": ("アプリが重くて使いにくいです。", "アプリのログインがよく切れます。",
                    "アプリの更新後に不具合が増えました。"),
        },
        "points": {
            "pos": ("ポイントが貯まりやすくてうれしいです。", "誕生日のポイント特典がうれしかったです。"),
            "neg": ("ポイントの有効期限が短すぎます。", "ポイントの使い方が分かりにくいです。",
                    "ポイント還元率が下がって残念です。"),
        },
    },
    "en": {
        "price": {
            "pos": ("Great value for the price.", "The sale prices are a real bargain.",
                    "Prices are fair, so I can keep buying."),
            "neg": ("The price is too high.", "Prices went up recently and it is getting expensive.",
                    "With shipping, the price is more than other shops.", "Please reconsider your prices."),
        },
        "quality": {
            "pos": ("Excellent quality, the aroma is wonderful.", "Consistent quality every time.",
                    "The quality of the beans is outstanding."),
            "neg": ("The quality was inconsistent this time.", "The taste was worse than before.",
                    "Quality did not meet my expectations."),
        },
        "delivery": {
            "pos": ("Fast delivery and careful packaging.", "Delivered the next day, very convenient."),
            "neg": ("Delivery was late and missed the promised date.", "The package arrived damaged.",
                    "Shipping takes far too long.", "Hard to track where my delivery is."),
        },
        "support": {
            "pos": ("Support answered quickly and politely.", "The support team really helped me."),
            "neg": ("No reply from support for days.", "Support was slow and did not solve my problem.",
                    "Could not get through to the call centre.", "The chatbot could not solve my issue."),
        },
        "staff": {
            "pos": ("The staff in the store were friendly and helpful.",
                    "Staff recommendations were spot on."),
            "neg": ("The store staff seemed unfriendly.", "Staff did not know the products well."),
        },
        "app": {
            "pos": ("The app is easy to use and ordering is simple.", "Reordering from the app is handy."),
            "neg": ("The app is slow and hard to use.", "The app keeps logging me out.",
                    "Since the last app update there are more bugs."),
        },
        "points": {
            "pos": ("Earning points is easy and rewarding.", "Loved the birthday points bonus."),
            "neg": ("Points expire too soon.", "It is unclear how to use my points.",
                    "The points rate went down, disappointing."),
        },
    },
}
#: Closing sentences by sentiment and language.
CLOSERS: Final = {
    "ja": {"pos": ("また利用したいです。", "友人にも勧めたいと思います。", "これからも応援しています。"),
           "neg": ("改善をお願いします。", "このままだと他のお店に変えるかもしれません。", "残念です。")},
    "en": {"pos": ("Will definitely order again.", "I recommend it to my friends.", "Keep it up!"),
           "neg": ("Please improve this.", "I may switch to another shop.", "Disappointed.")},
}
REVIEW_TITLES: Final = {
    "ja": {"pos": ("リピートしています", "大満足", "おすすめです", "期待以上でした"),
           "neg": ("いまひとつ", "期待外れ", "残念でした", "改善してほしい")},
    "en": {"pos": ("Love it", "Highly recommended", "Better than expected", "Will buy again"),
           "neg": ("Not great", "Disappointing", "Expected more", "Needs improvement")},
}
#: Support contact topic -> (ja text, en text) pairs describing the issue.
CONTACT_TEXTS: Final = {
    "delivery": (("荷物がまだ届きません。配送状況を教えてください。", "My order has not arrived yet."),
                 ("届いた商品が破損していました。", "The item arrived damaged.")),
    "product": (("商品の使い方を教えてください。", "How do I use this product?"),
                ("味が前回と違う気がします。", "The taste seems different from last time.")),
    "billing": (("二重に請求されています。", "I was charged twice."),
                ("領収書を発行してください。", "Please send me a receipt.")),
    "account": (("ログインできません。", "I cannot log in."),
                ("登録メールアドレスを変更したいです。", "I want to change my e-mail address.")),
    "returns": (("返品の方法を教えてください。", "How can I return an item?"),
                ("注文した商品と違うものが届きました。", "I received the wrong item.")),
    "points": (("ポイントが付与されていません。", "My points were not added."),
               ("ポイントの有効期限を知りたいです。", "When do my points expire?")),
    "app": (("アプリが起動しません。", "The app does not start."),
            ("アプリで注文履歴が表示されません。", "The app does not show my orders.")),
}
RETURN_REASONS: Final = {
    "ja": ("イメージと違った", "破損・不良", "注文間違い", "サイズが合わなかった", "不要になった"),
    "en": ("Not as pictured", "Damaged or faulty", "Ordered by mistake", "Wrong size",
           "No longer needed"),
}
COMMUNITY_POSTS: Final = {
    "ja": (("今朝の一杯", "新しい豆で淹れてみました。香りが最高です。"),
           ("おすすめの淹れ方", "92度のお湯でゆっくり注ぐと甘みが出ます。"),
           ("ワークショップの感想", "ハンドドリップ教室に参加しました。とても楽しかったです。"),
           ("質問です", "ミルの挽き目はどのくらいが良いでしょうか？")),
    "en": (("My morning cup", "Tried the new beans today, wonderful aroma."),
           ("Brewing tip", "Pour slowly at 92 degrees for a sweeter cup."),
           ("Workshop feedback", "Joined the hand-drip class, it was great fun."),
           ("Question", "What grind size do you use for pour-over?")),
}
SEARCH_QUERIES: Final = (
    "エチオピア", "デカフェ", "ドリップバッグ", "ギフト", "ケトル", "ミル", "抹茶", "マグカップ",
    "定期便", "セール", "decaf", "gift set", "grinder",
)

# fmt: on
