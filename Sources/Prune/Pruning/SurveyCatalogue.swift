/// One adversarial pruning method of the survey's taxonomy (Piras et al. 2024, Table 1; the cells
/// as its benchmark repository's `taxonomy.json` lists them).
public struct SurveyMethod: Codable, Sendable {
  /// The benchmark's key, e.g. `HARP_Zhao2023Holistic`.
  public let key: String
  public let name: String
  public let year: Int
  /// Where it appeared, where that is certain; nil otherwise.
  public let venue: String?
  public let paper: String
  /// The authors' public code, where known.
  public let code: String?
  public let cell: TaxonomyCell
  /// advprune's `--method` name when it is implemented.
  public var implementedAs: String?
}

extension SurveyMethod {
  /// The 26 methods of the survey, in its order (after, before, during training).
  public static let catalogue: [SurveyMethod] = {
    typealias C = TaxonomyCell
    func m(
      _ key: String, _ name: String, _ year: Int, _ venue: String?, _ paper: String, code: String? = nil, _ pipeline: Pipeline,
      _ schedule: Schedule?, _ structures: [Structure], _ localities: [Locality], _ criterion: Criterion, as method: String? = nil
    ) -> SurveyMethod {
      SurveyMethod(
        key: key, name: name, year: year, venue: venue, paper: paper, code: code,
        cell: C(pipeline: pipeline, schedule: schedule, structures: structures, localities: localities, criterion: criterion), implementedAs: method)
    }
    let u = Structure.unstructured
    return [
      m(
        "RADMM_Ye2019Adversarial", "R-ADMM", 2019, "ICCV",
        "https://openaccess.thecvf.com/content_ICCV_2019/papers/Ye_Adversarial_Robustness_vs._Model_Compression_or_Both_ICCV_2019_paper.pdf",
        code: "https://github.com/yeshaokai/Robustness-Aware-Pruning-ADMM", .after, .oneShot, [u, .filters], [.local], .solwm, as: "radmm"),
      m(
        "HYDRA_Sehwag2020Hydra", "HYDRA", 2020, "NeurIPS", "https://arxiv.org/abs/2002.10509", code: "https://github.com/inspire-group/hydra",
        .after, .oneShot, [u], [.local], .lis, as: "hydra"),
      m(
        "Heracles_Zhao2022NonUniform", "Heracles", 2022, "AutoML", "https://openreview.net/pdf?id=rElOlZ6SUg5", .after, .oneShot,
        [u, .channels], [.global], .lis),
      m(
        "HARP_Zhao2023Holistic", "HARP", 2023, "ICLR", "https://openreview.net/pdf?id=sAJDi9lD06L", code: "https://github.com/intellisec/harp",
        .after, .oneShot, [u, .channels], [.global], .lis, as: "harp"),
      m("PwoA_Jian2022Pruning", "PwoA", 2022, "ICDM", "https://arxiv.org/abs/2210.04311", .after, .oneShot, [u], [.local], .solwm),
      m("MAD_Lee2022Masking", "MAD", 2022, "CVPR", "https://arxiv.org/abs/2204.02738", .after, .oneShot, [u], [.global], .lis),
      m(
        "Sehwag19_Sehwag2019Towards", "Sehwag19", 2019, "arXiv", "https://arxiv.org/abs/1906.06110", .after, .iterative, [u, .filters], [.global],
        .lwm),
      m("RSR_Rakin2019Robust", "RSR", 2019, "arXiv", "https://arxiv.org/abs/1905.13074", .after, .oneShot, [u], [.global], .relwm),
      m(
        "BNAP_Wei2021Batch", "BNAP", 2021, nil, "https://ieeexplore.ieee.org/stamp/stamp.jsp?tp=&arnumber=9534077", .after, .oneShot,
        [u, .filters], [.global], .lis),
      m(
        "RSR_Lim2021Robustness", "RFP (Lim21)", 2021, nil,
        "http://esoc.hanyang.ac.kr/publications/2021/Robustness_aware_Filter_Pruning_for_Robust_Neural_Networks_Against_Adversarial_Attacks.pdf",
        .after, .oneShot, [.filters], [.local], .hgm),
      m(
        "DeadWooding_Kaur2022Deadwooding", "DeadWooding", 2022, "arXiv", "https://arxiv.org/abs/2202.05226", .after, .oneShot, [u], [.global], .solwm),
      m(
        "FRE_Zhuang2023Adversarial", "FRE", 2023, nil, "https://ieeexplore.ieee.org/stamp/stamp.jsp?tp=&arnumber=10095291", .after, .iterative,
        [.filters], [.global], .lis),
      m(
        "Luo23_Luo2023Towards", "Luo23", 2023, nil, "https://ieeexplore.ieee.org/stamp/stamp.jsp?tp=&arnumber=10332249", .after, .oneShot,
        [.filters], [.local], .lis),
      m("SRGKP_Zhong2023One", "SR-GKP", 2023, nil, "https://openreview.net/pdf?id=Pjky9XG8zP", .after, .oneShot, [.kernels], [.local], .lis),
      m(
        "FSRP_Qian2023Robust", "FSRP", 2023, nil, "https://papers.ssrn.com/sol3/papers.cfm?abstract_id=4551998", .after, .oneShot, [.filters],
        [.local], .lis),
      m("Cosentino19_Cosentino2019The", "Cosentino19", 2019, "arXiv", "https://arxiv.org/abs/1912.02386", .before, .iterative, [u], [.global], .lwm),
      m("Li20_Li2020Towards", "Li20", 2020, "arXiv", "https://arxiv.org/abs/2003.05733", .before, .oneShot, [u], [.global], .lwm, as: "li20"),
      m("Wang20_Wang2020Achieving", "Wang20", 2020, "arXiv", "https://arxiv.org/abs/2009.05423", .before, .iterative, [u], [.global], .lwm),
      m(
        "RST_Fu2021Drawing", "RST", 2021, "NeurIPS",
        "https://proceedings.neurips.cc/paper_files/paper/2021/file/6ce8d8f3b038f737cefcdafcf3752452-Paper.pdf", .before, .oneShot, [u], [.local],
        .lis, as: "rst"),
      m(
        "RobustBird_Chen2021Sparsity", "RobustBird", 2022, "ICLR", "https://arxiv.org/abs/2202.09844",
        code: "https://github.com/VITA-Group/Sparsity-Win-Robust-Generalization", .before, .iterative, [u], [.global], .lwm,
        as: "robustbird"),
      m("AWT_Shi2022Finding", "AWT", 2022, "AISTATS", "https://proceedings.mlr.press/v151/shi22a/shi22a.pdf", .before, .oneShot, [u], [], .lwm),
      m(
        "TwinRep_Li2023Learning", "TwinRep", 2023, "AAAI", "https://ojs.aaai.org/index.php/AAAI/article/view/26027", .during, nil, [u, .channels],
        [.global], .relwm, as: "twinrep"),
      m(
        "BCSP_Ozdenizci2021Training", "BCS-P", 2021, "ICML", "https://proceedings.mlr.press/v139/ozdenizci21a/ozdenizci21a.pdf",
        code: "https://github.com/IGITUGraz/SparseAdversarialTraining", .during, nil, [u], [.global, .local], .bcs),
      m("DNR_Kundu2020Tunable", "DNR", 2021, "ASP-DAC", "https://arxiv.org/abs/2011.03083", .during, nil, [u, .channels], [.global], .lis),
      m(
        "InTrain_Vemparala2021Adversarial", "In-Train", 2021, "CVPR workshops",
        "https://openaccess.thecvf.com/content/CVPR2021W/SAIAD/papers/Vemparala_Adversarial_Robust_Model_Compression_Using_In-Train_Pruning_CVPRW_2021_paper.pdf",
        .during, nil, [u, .channels], [.global], .lis),
      m(
        "FlyingBird_Chen2021Sparsity", "FlyingBird", 2022, "ICLR", "https://arxiv.org/abs/2202.09844",
        code: "https://github.com/VITA-Group/Sparsity-Win-Robust-Generalization", .during, nil, [u], [.global], .lwm, as: "flyingbird"),
    ]
  }()
}
