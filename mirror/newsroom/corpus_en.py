"""Hand-written English articles of the fictional Zarechensk Courier (our own text)."""

from __future__ import annotations

from mirror.newsroom.corpus import Draft

DRAFTS_EN: tuple[Draft, ...] = (
    Draft(
        title="City council passes 2027 budget after all-night session",
        lead=(
            "Councillors approved a spending plan that cuts road repairs by a third "
            "and raises parking fees, after eleven hours of debate and two walkouts."
        ),
        section="City",
        topic="The city budget",
        authors=("Anna Petrova",),
        paragraphs=(
            "The Zarechensk city council approved next year's budget shortly before six "
            "o'clock on Thursday morning, after a session that began at seven the previous "
            "evening. Nineteen councillors voted in favour, eight against and two abstained.",
            "The plan sets spending at 14.2 billion roubles, roughly four per cent more than "
            "this year, but much of the increase will be swallowed by debt payments. The "
            "budget for road repairs falls from 1.9 billion to 1.3 billion, and the city will "
            "resurface only the two bridges that inspectors last spring called unsafe.",
            "Parking in the old town will cost 120 roubles an hour from March, up from 60. "
            "Deputy mayor Sergei Lanin told the chamber that the money would pay for new "
            "buses on the eastern routes, a promise opposition members said they had heard "
            "in each of the last three budgets.",
            "Twice during the night members of the opposition group left the chamber in "
            "protest, first when an amendment to restore funding for two libraries was "
            "refused a vote, and again when the speaker cut off a councillor who was "
            "reading out a list of unfinished contracts.",
            "Residents who had queued to speak in the public part of the session were "
            "given two minutes each. Most of them raised the same issue: the closure of "
            "the night clinic on Sadovaya Street, which the budget does not mention at all.",
            "The mayor's office said in a statement that the budget was balanced and "
            "realistic. The opposition says it will ask the regional audit chamber to "
            "review the borrowing plan before the first payments fall due in April.",
        ),
    ),
    Draft(
        title="Fish die-off on the Tikhaya: tests point to the paper mill",
        lead=(
            "Independent laboratory results seen by the Courier show phenol levels forty "
            "times above the limit downstream of the Krasny Bor plant."
        ),
        section="Environment",
        topic="The Tikhaya pollution",
        authors=("Mark Ellison", "Daria Volkova"),
        paragraphs=(
            "Thousands of dead fish washed up along a six-kilometre stretch of the Tikhaya "
            "river last weekend, from the railway bridge to the village of Ust-Lomovka. "
            "Anglers who found them on Saturday morning said the water smelled of "
            "disinfectant and had a yellow film near the banks.",
            "Volunteers from the Clean River group took water samples at four points and "
            "sent them to an accredited laboratory in the regional capital. The results, "
            "which the Courier has seen, show phenol concentrations forty times above the "
            "permitted level at the outflow below the Krasny Bor paper mill.",
            "Upstream of the mill the readings were normal. The laboratory's director "
            "confirmed that the samples had been sealed and logged on arrival and said the "
            "pattern was consistent with a single large discharge.",
            "The mill's owners said in a short statement that their treatment plant had "
            "been working normally and that they would cooperate with any inspection. "
            "They did not answer questions about a pipe repair that workers say was carried "
            "out on Friday night.",
            "The regional environmental agency took its own samples only on Tuesday, three "
            "days after the die-off was first reported. An official there said the results "
            "would be published within a month.",
            "Residents of Ust-Lomovka, whose wells lie a few hundred metres from the bank, "
            "have been told to boil their water. Many of them say they have stopped using "
            "it altogether and are buying bottled water in town.",
        ),
    ),
    Draft(
        title="Former deputy mayor jailed for eight years in road-repair fraud",
        lead=(
            "The court found that contracts worth 340 million roubles were paid in full "
            "for roads that were never resurfaced."
        ),
        section="Courts",
        topic="The road-repair trial",
        authors=("Tom Brandt",),
        paragraphs=(
            "A district court on Monday sentenced Viktor Sayenko, who was deputy mayor for "
            "transport until last year, to eight years in a general-regime colony for "
            "large-scale fraud and abuse of office.",
            "Prosecutors said that between 2021 and 2024 Sayenko signed off on road contracts "
            "worth 340 million roubles with two firms controlled by his former business "
            "partner. Much of the work existed only on paper: inspectors who drilled the "
            "asphalt on eleven streets found the old surface underneath.",
            "Sayenko denied the charges throughout the seven-month trial and said he had "
            "relied on the acceptance certificates signed by his staff. His lawyer said "
            "they would appeal, arguing that the court had refused to call two key "
            "witnesses for the defence.",
            "The contractor, Oleg Frolov, received five years after agreeing to cooperate "
            "with investigators. Two engineers who signed the certificates were given "
            "suspended sentences.",
            "The court also ordered the confiscation of a country house and three flats "
            "registered to members of Sayenko's family. The city says it will sue for the "
            "rest of the money, though few expect much of it to be recovered.",
        ),
    ),
    Draft(
        title="Parents fight plan to merge three village schools",
        lead=(
            "Children from Lipovka and Gorki would travel up to 40 minutes each way to a "
            "new combined school, and families say the bus route is not safe in winter."
        ),
        section="Education",
        topic="The school merger",
        authors=("Daria Volkova",),
        paragraphs=(
            "More than two hundred parents have signed a letter to the district education "
            "department asking it to drop a plan that would close the schools in Lipovka and "
            "Gorki and move their pupils to an enlarged school in Verkhnee.",
            "The department says the merger will save money on heating and staff and give "
            "children access to science laboratories and a proper gym. Lipovka's school has "
            "41 pupils across eleven years, and Gorki's has 27.",
            "Parents say the cost will be paid by their children. The road to Verkhnee is "
            "not lit, crosses a level crossing with no barrier and is often cleared of snow "
            "only by mid-morning. Several said their children would have to leave home "
            "before seven.",
            "Teachers at both schools were told not to discuss the plan with the press. One "
            "of them, speaking on condition of anonymity, said the small classes were the "
            "reason the schools' exam results were among the best in the district.",
            "A public hearing is scheduled for the second week of December. The department "
            "has promised to publish the transport study the plan relies on before then, "
            "something parents have been requesting since September.",
        ),
    ),
    Draft(
        title="“We counted every ballot twice”: observers on the regional election",
        lead=(
            "Independent observers describe locked polling stations, a broken camera and "
            "turnout that jumped by a fifth in the last hour of voting."
        ),
        section="Politics",
        topic="The regional election",
        authors=("Anna Petrova", "Tom Brandt"),
        paragraphs=(
            "Observers from the Golos-Zarechye network watched the count at 38 of the "
            "city's 112 polling stations on Sunday night. At most of them, they say, the "
            "count was slow but orderly, and the protocols matched what they had seen.",
            "At polling station 1407, in the school on Zavodskaya Street, things went "
            "differently. An observer there said she was asked to leave the room for twenty "
            "minutes while officials took a break, and that when she returned the ballot box "
            "had been moved and its seal replaced.",
            "The camera that should have recorded the count was not working, officials "
            "told her. The final protocol gave the governing party 71 per cent, compared with "
            "an average of 48 per cent at stations where observers were present.",
            "Across the city, official turnout rose from 31 per cent at six in the evening "
            "to 38 per cent at the close, a jump the observers say is hard to explain given "
            "the empty polling stations they saw in the final hour.",
            "The regional election commission said it had received no formal complaints "
            "and that the results were valid. The observers have filed complaints about "
            "eleven stations and say they will go to court if they are ignored.",
            "“We counted every ballot twice, because we knew nobody would believe us "
            "otherwise,” said one of the volunteers, a retired maths teacher. “The numbers "
            "that came from the stations we were not allowed to watch are a different story.”",
        ),
    ),
    Draft(
        title="Bread, buckwheat & heating: what a month of prices looks like",
        lead=(
            "We tracked the price of twenty everyday items in four Zarechensk shops since "
            "October. Some rose faster than the official inflation figure suggests."
        ),
        section="Economy",
        topic="Rising prices",
        authors=("Mark Ellison",),
        paragraphs=(
            "Every Monday since the start of October a Courier reporter has visited the same "
            "four shops, two chain supermarkets, a discounter and the covered market, and "
            "written down the prices of twenty items that most households buy every week.",
            "Over six weeks the total cost of the basket rose by 4.8 per cent. The official "
            "regional figure for the same period is 1.1 per cent. The biggest increases were "
            "for butter, which went up by 17 per cent, and buckwheat, up by 12.",
            "Bread rose more modestly, by about three per cent, though the cheapest loaf "
            "disappeared from the discounter's shelves in the third week and was replaced by "
            "a smaller one at the same price.",
            "Heating bills, which arrive in November, are a separate worry. The regional "
            "tariff rose by nine per cent in July, and many residents of older blocks say "
            "their first bill of the season was higher still because of a new charge for "
            "the building's meter.",
            "Shop managers who agreed to talk to us blamed their suppliers, and the "
            "suppliers blamed fuel and transport. An economist at the regional university "
            "said that small towns often see faster price rises because competition is weak.",
        ),
    ),
    Draft(
        title="Regional hospital closes maternity ward — mothers told to travel 90 km",
        lead=(
            "From January, women in the Zarechensk district will have to give birth in the "
            "regional capital. Doctors warn the roads are not ready."
        ),
        section="Health",
        topic="The maternity ward closure",
        authors=("Daria Volkova", "Anna Petrova"),
        paragraphs=(
            "The maternity ward of the Zarechensk district hospital will close on 1 January, "
            "the regional health ministry confirmed this week. It delivered 612 babies last "
            "year and is the only one within 90 kilometres.",
            "The ministry says the ward cannot meet new staffing rules, which require an "
            "anaesthetist and a neonatologist to be on duty at all times. The hospital has "
            "had no neonatologist since the spring, when the last one retired.",
            "Expectant mothers will be sent to the perinatal centre in the regional capital. "
            "The ministry has promised that women near their due date will be offered a bed "
            "in a hostel next to the centre, but has not said who will pay for it.",
            "Doctors at the hospital say the decision will put lives at risk. The road to the "
            "capital is single-lane for most of its length, and in winter the journey can "
            "take more than two hours. The district has three ambulances.",
            "A petition to keep the ward open has gathered more than nine thousand "
            "signatures in a district of forty thousand people. Its organisers plan to hand "
            "it to the governor's office next week.",
        ),
    ),
    Draft(
        title="Bus drivers strike over unpaid overtime",
        lead=(
            "Two thirds of the municipal fleet stayed in the depot on Wednesday as drivers "
            "demanded four months of overtime pay."
        ),
        section="Labour",
        topic="The bus strike",
        authors=("Tom Brandt",),
        paragraphs=(
            "Only 23 of the city's 70 municipal buses left the depot on Wednesday morning, "
            "after drivers on the northern and eastern routes refused to work until they are "
            "paid for overtime dating back to July.",
            "The drivers say they have been working twelve-hour shifts for months because the "
            "company is short of staff, but that overtime has not appeared on their pay slips "
            "since the summer. One driver showed the Courier a pay slip for October with a "
            "total of 38,000 roubles for 26 shifts.",
            "The strike was organised without a union. The company's drivers left the "
            "official union two years ago, saying it had never once sided with them, and now "
            "coordinate through a group chat that has more than two hundred members.",
            "The company's director told reporters that the overtime would be paid once the "
            "city transfers a subsidy that is late, and warned that drivers who miss shifts "
            "could be dismissed.",
            "Commuters at the stops on Lenin Avenue waited up to an hour for a bus. Many said "
            "they supported the drivers. “They drive us every day in the dark and the snow,” "
            "said a nurse on her way to the hospital. “Pay them.”",
        ),
    ),
)
