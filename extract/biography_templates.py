"""The word lists and sentence templates the synthetic biographies of extract/biographies.py are made from:
first names per gender, surnames, places, and templates with {slots} for intro, nurse, professor
and personal sentences."""

# ---------------------------------------------------------------------------- names

FEMALE_NAMES = """
Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty Sandra Margaret
Ashley Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah Stephanie Dorothy Rebecca Sharon Laura
Cynthia Amy Kathleen Angela Shirley Brenda Emma Anna Pamela Nicole Samantha Katherine Christine Helen
Debra Rachel Carolyn Janet Maria Catherine Heather Diane Olivia Julie Joyce Victoria Ruth Virginia Lauren
Kelly Christina Joan Evelyn Judith Andrea Hannah Megan Cheryl Jacqueline Martha Madison Teresa Gloria Sara
Janice Ann Kathryn Abigail Sophia Frances Jean Alice Judy Isabella Julia Grace Amber Denise Danielle
Marilyn Beverly Charlotte Natalie Theresa Diana Brittany Doris Kayla Alexis Lori Marie Tiffany Rose
Kristen Sophie Chloe Zoe Lily Ella Ava Mia Harper Aria Layla Nora Hazel Violet Aurora Savannah Audrey
Brooklyn Bella Claire Skylar Lucy Paisley Everly Caroline Naomi Eleanor Stella Maya Leah Ruby Alyssa
Gabriella Madeline Valentina Willow Ivy Autumn Piper Sadie Clara Eliza Vivian Josephine Delilah Genevieve
Rosalind Beatrice Agnes Edith Irene Lillian Mildred Esther Gladys Ethel Florence Harriet Louise Mabel
Priya Aisha Fatima Mei Yuki Ingrid Astrid Greta Freya Elena Sofia Lucia Carmen Isabel Paula Camille
Chantal Colette Monique Yvonne Bridget Siobhan Fiona Eileen Maureen Molly Tessa Vanessa Veronica Wendy
Yolanda Tamara Sonia Renee Rita Rosa Stacy Tracy Vera Bonnie Carla Dana Erica Gina Holly Jill Joanna
Kara Leslie Lydia Marcia Miranda Nina Paige Regina Sheila Tanya Tina Trisha Ursula Gwen Hilda Jasmine
""".split()

MALE_NAMES = """
James Robert John Michael David William Richard Joseph Thomas Charles Christopher Daniel Matthew Anthony
Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy Ronald Edward Jason Jeffrey Ryan
Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel Gregory Alexander
Frank Patrick Raymond Jack Dennis Jerry Tyler Aaron Jose Adam Nathan Henry Douglas Zachary Peter Kyle
Ethan Walter Noah Jeremy Christian Keith Roger Terry Gerald Harold Sean Austin Carl Arthur Lawrence Dylan
Jesse Jordan Bryan Billy Joe Bruce Gabriel Logan Albert Willie Alan Juan Wayne Elijah Randy Roy Vincent
Ralph Eugene Russell Bobby Mason Philip Louis Liam Lucas Oliver Elias Caleb Owen Isaac Hudson Miles
Leo Theodore Hugo Felix Oscar Jasper Silas Ezra Asher Wyatt Grayson Julian Levi Lincoln Jaxon Carter
Landon Hunter Connor Colton Adrian Dominic Xavier Evan Gavin Chase Cole Blake Tristan Bennett Declan
Everett Rowan Emmett Beckett Harrison Maxwell Wesley Reid Preston Spencer Trevor Garrett Dalton Marcus
Victor Raj Arjun Hiroshi Kenji Lars Sven Anders Nils Matteo Luca Marco Diego Carlos Pablo Rafael Pierre
Jacques Louis Henri Klaus Dieter Stefan Tobias Conor Declan Fergus Angus Duncan Malcolm Graham Nigel
Clive Rupert Desmond Reginald Cedric Herbert Howard Leonard Stanley Vernon Wallace Clifford Gordon Glenn
Floyd Lloyd Milton Morris Norman Otis Perry Ross Rodney Stuart Todd Troy Wade Warren Brett Clark Dean
Derek Drew Grant Jared Kurt Lance Luke Neil Shane Tony Craig Curtis Darren Dustin Jay Jim Kirk Marvin
""".split()

SURNAMES = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson
Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis
Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall
Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins
Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly
Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes
Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan
Bell Coleman Butler Henderson Barnes Fisher Vasquez Simmons Graham Marshall Owens Harrison Gibson Kennedy
Wells Hayes Ford Hamilton Fraser Lindqvist Okafor Tanaka Schmidt Rossi Dubois Novak Kowalski Larsen
""".split()

PLACES = """
Boston Chicago Denver Seattle Portland Austin Atlanta Phoenix Toronto Vancouver Melbourne Sydney Dublin
Manchester Leeds Glasgow Edinburgh Cardiff Auckland Ottawa Montreal Halifax Minneapolis Milwaukee Detroit
Cleveland Pittsburgh Baltimore Richmond Raleigh Nashville Memphis Houston Dallas Tucson Sacramento Oakland
Madison Lincoln Omaha Albany Buffalo Hartford Providence Savannah Charleston Louisville Columbus Spokane
""".split()

# ---------------------------------------------------------------------------- templates
# Slots: {first} {last} {full} {title} {he} {He} {him} {his} {His} {place}.
# Pronoun case: {he}/{He} subject, {him} object, {his}/{His} possessive determiner.

INTRO = [
    "{full} lives in {place}.",
    "{full} grew up in {place}.",
    "{full} is based in {place}.",
    "{full} was born in {place}.",
    "{full} has spent most of {his} life in {place}.",
    "{full} moved to {place} several years ago.",
    "Originally from {place}, {full} now lives nearby with {his} family.",
    "{full} currently calls {place} home.",
    "{full} splits {his} time between {place} and the coast.",
    "{title} {last} has lived in {place} for over a decade.",
    "{full} returned to {place} after years abroad.",
    "A native of {place}, {full} still lives there.",
]

NURSE = [
    # duties
    "{He} monitors patients after surgery and adjusts {his} care plans through the night.",
    "{His} shifts are spent checking vital signs, dressing wounds and giving medication.",
    "{He} works twelve-hour shifts on a busy cardiac ward.",
    "{first} coordinates care with physicians and explains treatment options to worried families.",
    "{He} trains new staff on infection control and safe handling of medicines.",
    "Every morning {he} reviews charts and prepares the ward for the day's admissions.",
    "{He} specialises in caring for newborns in the intensive care unit.",
    "{first} is often the first person patients see when they arrive at the emergency department.",
    "{He} starts IV lines, draws blood and keeps careful records at the bedside.",
    "{His} patients in the oncology unit know {him} for {his} calm bedside manner.",
    "{He} visits elderly patients at home to manage wounds and chronic conditions.",
    "{first} leads the night team on the surgical ward.",
    "{He} helps patients recover after hip and knee replacements.",
    "{He} triages incoming patients and decides who needs to see a doctor first.",
    "{first} administers vaccines at a community health clinic twice a week.",
    "{He} works in a hospice, supporting patients and their families at the end of life.",
    # institutions and career
    "{He} has worked at the regional hospital for nine years.",
    "After years in the emergency room, {he} moved to a paediatric clinic.",
    "{first} joined the staff of a children's hospital straight after qualifying.",
    "{He} was recently promoted to charge nurse of the maternity unit.",
    "{He} is a registered nurse with a license in two states.",
    "{He} has worked on medical wards, in theatres and in a rural health centre.",
    "{first} took a position in the intensive care unit during the pandemic.",
    # education
    "{He} earned a Bachelor of Science in Nursing and later a certificate in critical care.",
    "{He} completed {his} nursing degree and clinical placements at a teaching hospital.",
    "{first} is studying part time to become a nurse practitioner.",
    "{He} holds certifications in advanced cardiac life support and paediatric care.",
    "{He} qualified after three years of clinical training on hospital wards.",
]

PROFESSOR = [
    # duties
    "{He} teaches undergraduate courses in organic chemistry and supervises doctoral students.",
    "{His} research focuses on the economic history of trade in the nineteenth century.",
    "{He} lectures on linear algebra and runs a graduate seminar on number theory.",
    "{first} has published more than sixty papers in peer-reviewed journals.",
    "{He} leads a research group studying the genetics of drought-resistant crops.",
    "{His} lab is funded by the national science foundation.",
    "{He} advises graduate students and sits on several thesis committees.",
    "{first} is writing a book on the philosophy of language.",
    "{He} teaches a popular introductory course on microeconomics.",
    "{His} work on machine learning theory has been cited thousands of times.",
    "{He} serves as an editor for a leading journal in comparative literature.",
    "{first} chairs the faculty committee on curriculum reform.",
    "{He} gives lectures on medieval history to packed halls.",
    "{His} department hosts an annual conference that {he} helped found.",
    "{He} spends {his} sabbatical writing grant proposals and a new textbook.",
    "{first} directs the graduate program in applied mathematics.",
    # institutions and career
    "{He} joined the faculty of the state university after a postdoctoral fellowship.",
    "{He} received tenure last year and now holds an endowed chair.",
    "{first} previously taught at a liberal arts college before moving to a research university.",
    "{He} was a visiting scholar at universities in Europe and Asia.",
    "{He} heads the department of sociology at a large public university.",
    "{first} has held academic appointments at three universities.",
    "{He} was recently elected a fellow of the national academy.",
    # education
    "{He} earned {his} PhD in physics and completed two postdoctoral positions.",
    "{He} received a doctorate in political science with a dissertation on voting behaviour.",
    "{first} studied classics as an undergraduate before earning a doctorate in archaeology.",
    "{He} holds a PhD in computer science and a master's degree in statistics.",
    "{He} wrote {his} dissertation on the ecology of coastal wetlands.",
]

PERSONAL = [
    # hobbies
    "In {his} spare time {he} enjoys hiking in the mountains.",
    "{He} plays the cello in a community orchestra.",
    "{first} runs marathons and has completed races on three continents.",
    "{He} loves cooking for friends and trying recipes from {his} travels.",
    "On weekends {he} can usually be found in {his} garden.",
    "{He} is an avid reader of mystery novels.",
    "{first} volunteers at the local animal shelter.",
    "{He} enjoys photography, especially of birds and landscapes.",
    "{He} has been learning to play the piano for the past few years.",
    "{first} sings in a choir and coaches a youth soccer team.",
    "{He} is a keen cyclist and rides to work every day.",
    "{He} spends {his} summers sailing with old friends.",
    "{first} collects old maps and vintage postcards.",
    "{He} practises yoga and meditation every morning.",
    "{He} enjoys fishing and camping by the lake.",
    "{first} is a devoted fan of the local baseball team.",
    # family
    "{He} lives with {his} two children and a very old dog.",
    "{first} and {his} partner have three grandchildren.",
    "{He} is married and has a teenage daughter.",
    "{His} family has lived in the area for generations.",
    "{He} often visits {his} parents on the weekends.",
    "{first} is the youngest of five siblings.",
    "{He} and {his} spouse recently adopted a rescue cat.",
    # travel and other
    "{He} has travelled widely in South America.",
    "{first} speaks three languages fluently.",
    "{He} is learning Japanese in {his} free time.",
    "{He} writes a small blog about local history.",
    "Friends describe {him} as generous and quick to laugh.",
    "{first} enjoys board games and hosts a weekly game night.",
    "{He} restores old furniture in {his} workshop.",
    "{He} bakes bread every Sunday morning.",
    "{first} is an amateur astronomer with a telescope on {his} balcony.",
]

TEMPLATE_SETS = {"intro": INTRO, "nurse": NURSE, "professor": PROFESSOR, "personal": PERSONAL}
PRONOUNS = {
    "male": {"he": "he", "He": "He", "him": "him", "his": "his", "His": "His", "title": "Mr."},
    "female": {"he": "she", "He": "She", "him": "her", "his": "her", "His": "Her", "title": "Ms."},
}
